"""The eligibility service's collections: one verification per episode, and a counter of
interchange control numbers."""

from __future__ import annotations

from rcm_shared.service import Service
from rcm_shared.store import AggregateStore, ControlNumbers

VERIFICATIONS = "verifications"
COUNTERS = "counters"
MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is 9 digits


def verifications(service: Service) -> AggregateStore:
    return service.store(VERIFICATIONS)


def control_numbers(service: Service) -> ControlNumbers:
    """ISA13/GS06 numbers of the 270s."""
    return ControlNumbers(service.database, "interchange", MAX_CONTROL_NUMBER)
