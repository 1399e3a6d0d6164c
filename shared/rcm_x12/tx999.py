"""999 Implementation Acknowledgment (005010X231A1): models, build and parse."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from rcm_x12.common import ControlNumber, Identifier, X12Model, unique_control_numbers
from rcm_x12.envelope import (
    Envelope,
    OutGroup,
    OutSegment,
    OutTransaction,
    TransactionSet,
    envelope_of,
    parse_interchange,
    seg,
    typed_transactions,
    write_interchange,
)
from rcm_x12.errors import X12StructureError, X12ValueError
from rcm_x12.reader import Cursor, model_errors, slot
from rcm_x12.segments import Segment

VERSION = "005010X231A1"
SegmentId = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{1,2}$")]
SegmentErrorCode = Literal["1", "2", "3", "4", "5", "6", "7", "8", "I4", "I6", "I7", "I8", "I9"]
ElementErrorCode = Literal[
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "I10", "I11", "I12",
    "I13", "I6", "I9",
]  # fmt: skip
SetErrorCode = Literal[
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "15", "16", "17", "18",
    "19", "23", "24", "25", "26", "27", "I5", "I6",
]  # fmt: skip
GroupErrorCode = Literal[
    "1", "2", "3", "4", "5", "6", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19",
    "23", "24", "25", "26",
]  # fmt: skip


class ElementIssue(X12Model):
    """IK4: what is wrong with one element of the segment named by IK3."""

    position: int = Field(ge=1, le=99)
    component_position: int | None = Field(default=None, ge=1, le=99)
    data_element_reference: int | None = Field(default=None, ge=1, le=9999)
    error_code: ElementErrorCode
    bad_value: Annotated[str, StringConstraints(pattern=r"^[ -~]{1,99}$")] | None = None


class SegmentIssue(X12Model):
    """IK3 (+ IK4s): a segment of the acknowledged transaction set with an error."""

    segment_id: SegmentId
    position: int = Field(ge=1, le=999_999)  # position in the transaction set, ST = 1
    loop_id: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{1,4}$")] | None = None
    error_code: SegmentErrorCode | None = None
    element_issues: list[ElementIssue] = Field(default_factory=list)


class TransactionSetResponse(X12Model):
    """AK2 ... IK5 for one received transaction set."""

    transaction_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{3}$")]
    control_number: ControlNumber
    implementation_reference: Identifier | None = Field(default=None, max_length=35)
    status: Literal["A", "E", "M", "R", "W", "X"]
    segment_issues: list[SegmentIssue] = Field(default_factory=list)
    error_codes: list[SetErrorCode] = Field(default_factory=list, max_length=5)

    @property
    def accepted(self) -> bool:
        return self.status in ("A", "E")


class ImplementationAcknowledgment(X12Model):
    """One 999: the verdict on one received functional group."""

    control_number: ControlNumber
    functional_id: Literal["BE", "HB", "HC", "HI", "HN", "HP", "HR", "HS", "RA"]
    group_control_number: int = Field(ge=1, le=999_999_999)
    version: Identifier = Field(max_length=12)
    responses: list[TransactionSetResponse] = Field(default_factory=list)
    status: Literal["A", "E", "M", "P", "R", "W", "X"]
    included_count: int = Field(ge=0, le=999_999)
    received_count: int = Field(ge=0, le=999_999)
    accepted_count: int = Field(ge=0, le=999_999)
    error_codes: list[GroupErrorCode] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _counts(self) -> ImplementationAcknowledgment:
        if self.accepted_count > self.received_count:
            raise ValueError("AK904 accepted cannot exceed AK903 received")
        return self

    @property
    def accepted(self) -> bool:
        return self.status in ("A", "E", "P")


class AcknowledgmentDocument(X12Model):
    envelope: Envelope
    transactions: list[ImplementationAcknowledgment] = Field(min_length=1)

    _unique = field_validator("transactions")(unique_control_numbers)


def build_999(document: AcknowledgmentDocument, *, newline: bool = True) -> str:
    transactions = [
        OutTransaction("999", a.control_number, VERSION, _segments(a))
        for a in document.transactions
    ]
    return write_interchange(
        document.envelope, [OutGroup("FA", VERSION, transactions)], newline=newline
    )


def _number(value: int | None) -> str | None:
    return None if value is None else str(value)


def _segments(ack: ImplementationAcknowledgment) -> list[OutSegment]:
    out = [seg("AK1", ack.functional_id, str(ack.group_control_number), ack.version)]
    for r in ack.responses:
        out.append(seg("AK2", r.transaction_id, r.control_number, r.implementation_reference))
        for e in r.segment_issues:
            out.append(seg("IK3", e.segment_id, str(e.position), e.loop_id, e.error_code))
            for el in e.element_issues:
                where = (str(el.position), _number(el.component_position))
                reference = _number(el.data_element_reference)
                out.append(seg("IK4", where, reference, el.error_code, el.bad_value))
        out.append(seg("IK5", r.status, *r.error_codes))
    out.append(
        seg(
            "AK9",
            ack.status,
            str(ack.included_count),
            str(ack.received_count),
            str(ack.accepted_count),
            *ack.error_codes,
        )
    )
    return out


def parse_999(data: str | bytes) -> AcknowledgmentDocument:
    interchange = parse_interchange(data)
    acks = [_parse(t) for t in typed_transactions(interchange, "FA", VERSION, "999")]
    return AcknowledgmentDocument(envelope=envelope_of(interchange), transactions=acks)


def _parse(transaction: TransactionSet) -> ImplementationAcknowledgment:
    cursor = Cursor(transaction.body, transaction.trailer)
    ak1 = cursor.block("header", [slot("AK1", "ak1", required=True)]).one("ak1")
    responses: list[TransactionSetResponse] = []
    while cursor.at("AK2"):
        ak2 = cursor.block("2000", [slot("AK2", "ak2", required=True)]).one("ak2")
        errors: list[SegmentIssue] = []
        while cursor.at("IK3"):
            block = cursor.block(
                "2100",
                [
                    slot("IK3", "ik3", required=True),
                    slot("CTX", None, max_use=10),
                ],
            )
            element_issues: list[ElementIssue] = []
            while cursor.at("IK4"):
                ik4 = cursor.block(
                    "2110", [slot("IK4", "ik4", required=True), slot("CTX", None, max_use=10)]
                ).one("ik4")
                element_issues.append(_element_issue(ik4))
            ik3 = block.one("ik3")
            with model_errors(ik3):
                errors.append(
                    SegmentIssue(
                        segment_id=ik3.require(1),
                        position=ik3.integer(2),
                        loop_id=ik3.optional(3),
                        error_code=ik3.optional(4),
                        element_issues=element_issues,
                    )
                )
        ik5 = cursor.block("2000", [slot("IK5", "ik5", required=True)]).one("ik5")
        with model_errors(ak2):
            responses.append(
                TransactionSetResponse(
                    transaction_id=ak2.require(1),
                    control_number=ak2.require(2),
                    implementation_reference=ak2.optional(3),
                    status=ik5.require(1),
                    segment_issues=errors,
                    error_codes=_codes(ik5, 2, 6),
                )
            )
    ak9 = cursor.block("trailer", [slot("AK9", "ak9", required=True)]).one("ak9")
    cursor.expect_end("in the 999")
    with model_errors(ak1):
        return ImplementationAcknowledgment(
            control_number=transaction.control_number,
            functional_id=ak1.require(1),
            group_control_number=ak1.integer(2),
            version=ak1.require(3),
            responses=responses,
            status=ak9.require(1),
            included_count=ak9.integer(2),
            received_count=ak9.integer(3),
            accepted_count=ak9.integer(4),
            error_codes=_codes(ak9, 5, 9),
        )


def _codes(segment: Segment, first: int, last: int) -> list[str]:
    if len(segment.elements) > last:
        raise segment.error(X12ValueError, f"{segment.id} has more than {last} elements")
    values = [segment.get(n) for n in range(first, last + 1)]
    while values and not values[-1]:
        values.pop()
    if "" in values:
        raise segment.error(X12StructureError, "error codes must not leave gaps")
    return values


def _element_issue(ik4: Segment) -> ElementIssue:
    where = ik4.components(1)
    if not where or len(where) > 3 or not all(p.isdigit() for p in where if p):
        raise ik4.error(X12ValueError, "IK401 must be position[:component[:repeat]]")
    if len(where) == 3:
        raise ik4.error(X12ValueError, "IK401-3 (repetition position) is not supported")
    with model_errors(ik4):
        return ElementIssue(
            position=int(where[0] or 0),
            component_position=int(where[1]) if len(where) > 1 and where[1] else None,
            data_element_reference=ik4.integer(2) if ik4.get(2) else None,
            error_code=ik4.require(3),
            bad_value=ik4.optional(4),
        )
