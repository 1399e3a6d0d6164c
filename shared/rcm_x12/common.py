"""Value types shared by several transactions, and their segment readers/writers."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Literal, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from rcm_x12.envelope import OutSegment, seg
from rcm_x12.errors import X12ValueError
from rcm_x12.money import cents_to_x12, decimal_to_x12
from rcm_x12.reader import model_errors
from rcm_x12.segments import Segment

# Printable ASCII without leading/trailing blanks: what survives an X12 element intact.
_TEXT = r"^[!-~](?:[ -~]*[!-~])?$"


Name60 = Annotated[str, StringConstraints(pattern=_TEXT, max_length=60)]
Name35 = Annotated[str, StringConstraints(pattern=_TEXT, max_length=35)]
Identifier = Annotated[str, StringConstraints(pattern=_TEXT, max_length=80)]
# NM109/N104/SVD01 "Identification Code": 2-80 characters.
IdCode = Annotated[str, StringConstraints(pattern=_TEXT, min_length=2, max_length=80)]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,5}$")]
Modifier = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}$")]
ProcedureCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,48}$")]
TaxId = Annotated[str, StringConstraints(pattern=r"^[0-9]{9}$")]
PositiveQuantity = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=3)]
RevenueCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
FacilityCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{1,2}$")]
DfiId = Annotated[str, StringConstraints(pattern=r"^[0-9]{3,12}$")]
Account = Annotated[str, StringConstraints(pattern=_TEXT, max_length=35)]
CompanyId = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{10}$")]
ControlNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{4,9}$")]


def npi_check_digit_ok(npi: str) -> bool:
    """Luhn over "80840" + NPI, as CMS defines the NPI check digit."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 0
    for i, char in enumerate(reversed("80840" + npi)):
        digit = int(char)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


# Validators leave the value out of their messages: pydantic keeps the input apart, where
# a caller can drop it (a state or an id may sit among patient data).
def _valid_npi(value: str) -> str:
    if not npi_check_digit_ok(value):
        raise ValueError("not a valid NPI (10 digits with Luhn check digit)")
    return value


Npi = Annotated[str, AfterValidator(_valid_npi)]

US_STATES = frozenset(
    """AL AK AS AZ AR CA CO CT DE DC FM FL GA GU HI ID IL IN IA KS KY LA ME MH MD MA MI MN MS
    MO MT NE NV NH NJ NM NY NC ND MP OH OK OR PW PA PR RI SC SD TN TX UT VT VI VA WA WV WI
    WY""".split()  # noqa: SIM905 - a literal list of 59 codes reads worse
)


def _us_state(value: str) -> str:
    if value not in US_STATES:
        raise ValueError("not a US state or territory code")
    return value


class _Controlled(Protocol):
    @property
    def control_number(self) -> str: ...


C = TypeVar("C", bound=_Controlled)


def unique_control_numbers(transactions: list[C]) -> list[C]:
    """Documents validate with this: ST02 must be unique within the functional group."""
    numbers = [t.control_number for t in transactions]
    if len(set(numbers)) != len(numbers):
        raise ValueError("transaction control numbers (ST02) must be unique")
    return transactions


class X12Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Address(X12Model):
    line1: Name60 = Field(max_length=55)
    line2: Name60 | None = Field(default=None, max_length=55)
    city: Name60 = Field(min_length=2, max_length=30)
    state: Annotated[str, AfterValidator(_us_state)]
    postal_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{5}(?:[0-9]{4})?$")]


def address_segments(address: Address) -> list[OutSegment]:
    return [
        seg("N3", address.line1, address.line2),
        seg("N4", address.city, address.state, address.postal_code),
    ]


def read_address(n3: Segment, n4: Segment) -> Address:
    with model_errors(n4):
        return Address(
            line1=n3.require(1),
            line2=n3.optional(2),
            city=n4.require(1),
            state=n4.require(2),
            postal_code=n4.require(3),
        )


AdjustmentGroup = Literal["CO", "PR", "OA", "PI"]


class Adjustment(X12Model):
    """One CAS reason/amount/quantity triplet with its group code."""

    group: AdjustmentGroup
    reason: Code
    amount_cents: int
    quantity: Decimal | None = Field(default=None, max_digits=15, decimal_places=3)


def cas_segments(adjustments: Sequence[Adjustment]) -> list[OutSegment]:
    """Consecutive adjustments of one group share a CAS, six triplets at most."""
    segments: list[OutSegment] = []
    run: list[Adjustment] = []
    for adjustment in adjustments:
        if run and (run[0].group != adjustment.group or len(run) == 6):
            segments.append(_cas(run))
            run = []
        run.append(adjustment)
    if run:
        segments.append(_cas(run))
    return segments


def _cas(run: list[Adjustment]) -> OutSegment:
    elements: list[str | None] = [run[0].group]
    for a in run:
        quantity = decimal_to_x12(a.quantity) if a.quantity is not None else None
        elements += [a.reason, cents_to_x12(a.amount_cents), quantity]
    return seg("CAS", *elements)


def read_cas(segment: Segment) -> list[Adjustment]:
    group = segment.code(1, ("CO", "PR", "OA", "PI"))
    if len(segment.elements) > 19:
        raise segment.error(X12ValueError, "CAS holds at most six adjustments")
    adjustments: list[Adjustment] = []
    for first in range(2, 20, 3):
        if not segment.get(first):
            if segment.get(first + 1) or segment.get(first + 2):
                raise segment.error(X12ValueError, f"{segment.ref(first)} reason code missing")
            continue
        amount = segment.money(first + 1)
        quantity = segment.number_opt(first + 2)
        with model_errors(segment):
            adjustments.append(
                Adjustment(
                    group=group,
                    reason=segment.get(first),
                    amount_cents=amount,
                    quantity=quantity,
                )
            )
    if not adjustments:
        raise segment.error(X12ValueError, "CAS without any adjustment")
    return adjustments


class Procedure(X12Model):
    """A composite procedure identifier: qualifier, code and up to four modifiers."""

    qualifier: Literal["HC", "AD", "ER", "HP", "IV", "N4", "NU", "WK"] = "HC"
    code: ProcedureCode
    modifiers: list[Modifier] = Field(default_factory=list, max_length=4)


def procedure_composite(procedure: Procedure) -> tuple[str, ...]:
    return (procedure.qualifier, procedure.code, *procedure.modifiers)


def read_procedure(segment: Segment, n: int, allowed: Sequence[str]) -> Procedure:
    parts = segment.components(n)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise segment.error(X12ValueError, f"{segment.ref(n)} needs qualifier and code")
    if parts[0] not in allowed:
        raise segment.error(X12ValueError, f"{segment.ref(n)} qualifier {parts[0]!r} not allowed")
    # A seventh component is a free-text description, which is not modelled.
    modifiers = parts[2:6]
    while modifiers and not modifiers[-1]:
        modifiers.pop()
    if len(parts) > 7 or "" in modifiers:
        raise segment.error(X12ValueError, f"{segment.ref(n)} has malformed modifiers")
    with model_errors(segment):
        return Procedure(qualifier=parts[0], code=parts[1], modifiers=modifiers)
