"""The platform's processes: name, Python module and HTTP port, in one place.

`make run`, the end-to-end test and docker-compose all start these; a test checks that
docker-compose.yml agrees with this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Process:
    name: str
    module: str
    http_port: int


SERVICES = (
    Process("registration", "rcm_registration", 8001),
    Process("eligibility", "rcm_eligibility", 8002),
    Process("coding", "rcm_coding", 8003),
    Process("claims", "rcm_claims", 8004),
    Process("payments", "rcm_payments", 8005),
    Process("collections", "rcm_collections", 8006),
    Process("audit", "rcm_audit", 8007),
    Process("kpis", "rcm_kpis", 8008),
)
PAYER_SIMULATOR = Process("payer-simulator", "rcm_payer_simulator", 8010)
CONSOLE = Process("console", "rcm_console", 8009)  # a web front of the services: no events
PROCESSES = (*SERVICES, CONSOLE, PAYER_SIMULATOR)
