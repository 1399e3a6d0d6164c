"""The eligibility service's collections: one verification per episode, read and changed
by its id only, and the counters of interchange control numbers."""

from __future__ import annotations

from rcm_shared.aggregates import Aggregates
from rcm_shared.service import Service
from rcm_shared.store import ControlNumbers

from .domain import Verification

VERIFICATIONS = "verifications"
MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is 9 digits


def verifications(service: Service) -> Aggregates[Verification]:
    return service.aggregates(VERIFICATIONS, Verification)


def control_numbers(service: Service) -> ControlNumbers:
    """ISA13/GS06 numbers of the 270s, one range per partition of the episodes."""
    return ControlNumbers(
        service.database,
        "interchange",
        MAX_CONTROL_NUMBER,
        partitions=service.settings.topic_partitions,
    )
