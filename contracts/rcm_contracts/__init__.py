"""The v1 event catalog: the only code the services share about each other."""

from . import audit, claims, coding, collections, eligibility, payments, registration
from .base import CATALOG, Cents, Contract, EpisodeEvent, EpisodeRequest, Event, Request, event

__all__ = [
    "CATALOG",
    "Cents",
    "Contract",
    "EpisodeEvent",
    "EpisodeRequest",
    "Event",
    "Request",
    "audit",
    "claims",
    "coding",
    "collections",
    "eligibility",
    "event",
    "payments",
    "registration",
]
