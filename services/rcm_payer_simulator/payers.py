"""The simulator's book of payers and their fee schedules (reference data, no state).

Allowed amounts are a payer-specific share (55-80%) of a typical list price per procedure,
in cents per unit, for exactly the procedure codes of docs/flow.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rcm_x12 import Address
from rcm_x12.remittance import FilingIndicator

from .rules import PAYER_RULES, PayerRules

# Typical list prices (cents per unit) of the procedures the platform bills.
LIST_PRICES_CENTS: Mapping[str, int] = MappingProxyType(
    {
        "99202": 110_00,
        "99203": 170_00,
        "99204": 255_00,
        "99205": 335_00,
        "99211": 45_00,
        "99212": 90_00,
        "99213": 140_00,
        "99214": 200_00,
        "99215": 280_00,
        "99396": 250_00,
        "83036": 40_00,
        "80061": 55_00,
        "81002": 15_00,
        "87880": 35_00,
        "36415": 12_00,
        "93000": 60_00,
        "73610": 95_00,
        "29540": 50_00,
        "96127": 20_00,
        "96372": 45_00,
        "90686": 55_00,
        "G0008": 35_00,
        "J1100": 6_00,  # per 1 mg
    }
)
EVALUATION_AND_MANAGEMENT = frozenset(
    {"99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215"}
)
# Preventive services carry no cost sharing (ACA).
PREVENTIVE = frozenset({"99396", "90686", "G0008"})


@dataclass(frozen=True)
class PayerInfo:
    payer_id: str
    name: str
    claim_prefix: str  # starts the payer claim control numbers it assigns
    filing_indicator: FilingIndicator  # 835 CLP06 (claim filing indicator of its plans)
    trace_originator: str  # TRN03: "1" + the payer's tax id
    address: Address
    phone: str
    plans: tuple[str, ...]
    fee_schedule: Mapping[str, int]  # procedure code -> allowed cents per unit

    @property
    def x12_name(self) -> str:
        return self.name.upper()

    @property
    def rules(self) -> PayerRules:
        return PAYER_RULES[self.payer_id]


def _schedule(payer_id: str, base_percent: int) -> Mapping[str, int]:
    """Around `base_percent` of list, varied per code (fixed, not seeded), within 55-80%."""
    schedule = {}
    for code, price in LIST_PRICES_CENTS.items():
        spread = sum(map(ord, payer_id + code)) % 9 - 4
        percent = min(80, max(55, base_percent + spread))
        schedule[code] = price * percent // 100
    return MappingProxyType(schedule)


PAYERS: Mapping[str, PayerInfo] = MappingProxyType(
    {
        payer.payer_id: payer
        for payer in (
            PayerInfo(
                payer_id="ACME01",
                name="Acme Health Plan",
                claim_prefix="AC",
                filing_indicator="12",
                trace_originator="1043218765",
                address=Address(
                    line1="100 INSURANCE WAY", city="HARTFORD", state="CT", postal_code="06103"
                ),
                phone="8005550101",
                plans=("ACME GOLD PPO", "ACME SILVER PPO", "ACME BRONZE PPO"),
                fee_schedule=_schedule("ACME01", 70),
            ),
            PayerInfo(
                payer_id="SUMMIT",
                name="Summit Mutual",
                claim_prefix="SM",
                filing_indicator="HM",
                trace_originator="1056781234",
                address=Address(
                    line1="2 SUMMIT PLAZA", city="DENVER", state="CO", postal_code="80202"
                ),
                phone="8005550102",
                plans=("SUMMIT HMO SELECT", "SUMMIT HMO CORE"),
                fee_schedule=_schedule("SUMMIT", 62),
            ),
            PayerInfo(
                payer_id="BLUEPK",
                name="Blue Peak Insurance",
                claim_prefix="BP",
                filing_indicator="12",
                trace_originator="1061234987",
                address=Address(
                    line1="30 PEAK RD", city="SALT LAKE CITY", state="UT", postal_code="84101"
                ),
                phone="8005550103",
                plans=("BLUE PEAK PREMIER PPO", "BLUE PEAK VALUE PPO"),
                fee_schedule=_schedule("BLUEPK", 75),
            ),
            PayerInfo(
                payer_id="MERIDN",
                name="Meridian Care",
                claim_prefix="MC",
                filing_indicator="13",
                trace_originator="1078904561",
                address=Address(
                    line1="400 MERIDIAN AVE", city="INDIANAPOLIS", state="IN", postal_code="46204"
                ),
                phone="8005550104",
                plans=("MERIDIAN CHOICE POS", "MERIDIAN BASIC POS"),
                fee_schedule=_schedule("MERIDN", 60),
            ),
        )
    }
)
