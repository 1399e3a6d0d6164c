"""The registration service's collection: one episode per document (appointment, patient,
guarantor, coverages, check-in, encounter), read and changed by its id only."""

from __future__ import annotations

from rcm_shared.aggregates import Aggregates
from rcm_shared.service import Service

from .domain import Episode

EPISODES = "episodes"


def episodes(service: Service) -> Aggregates[Episode]:
    return service.aggregates(EPISODES, Episode)
