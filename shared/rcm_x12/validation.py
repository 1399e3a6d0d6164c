"""A second opinion from pyx12's validation engine (structure, codes, envelope counts).

pyx12 does not check money (an unbalanced 835 passes) and has no 5010 270/271 map.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import threading
from typing import Any

import pyx12.map_if
import pyx12.params
import pyx12.x12n_document

_LOGGER = "pyx12"
# pyx12 was not written for threads (one global logger, shared maps): one run at a time.
_LOCK = threading.Lock()


# pyx12 parses its XML map (and code lists) again for every document: most of a claims
# process's time went there. A map is not changed by a validation (the walker keeps the
# counts), so each is parsed once per process.
_load_map_file = pyx12.map_if.load_map_file


@functools.cache
def _cached_map(map_file: str, map_path: str | None) -> pyx12.map_if.map_if:
    return _load_map_file(map_file, pyx12.params.params(), map_path)


def _map(
    map_file: str, param: pyx12.params.ParamsBase, map_path: str | None = None
) -> pyx12.map_if.map_if:
    return _cached_map(map_file, map_path)


pyx12.map_if.load_map_file = _map


# pyx12 logs every finding with the offending value (a name, a birth date): never let
# those records reach the process's handlers. Findings are read from its JSON report.
logging.getLogger(_LOGGER).addHandler(logging.NullHandler())
logging.getLogger(_LOGGER).propagate = False

# What the 999's codes mean (IK304 segment, IK403 element), for findings without values.
SEGMENT_ERRORS = {
    "1": "unrecognized segment id",
    "2": "unexpected segment",
    "3": "required segment missing",
    "4": "loop occurs over maximum times",
    "5": "segment exceeds maximum use",
    "6": "segment not in defined transaction set",
    "7": "segment not in proper sequence",
    "8": "segment has data element errors",
}
ELEMENT_ERRORS = {
    "1": "required data element missing",
    "2": "conditional required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated",
    "12": "too many repetitions",
    "13": "too many components",
}


def validate_with_pyx12(text: str) -> tuple[bool, list[str]]:
    """Run pyx12's engine (not the x12valid command, whose exit status is not a verdict).

    Returns (ok, findings). A finding says where (line, segment, element and their names
    in the implementation guide) and which rule (the 999's code), never the value: pyx12's
    own messages quote the values, and findings are stored and shown to billers.
    """
    report = io.StringIO()
    with _LOCK:
        try:
            ok = pyx12.x12n_document.x12n_document(
                param=pyx12.params.params(),
                src_file=io.StringIO(text),
                fd_997=None,
                fd_html=None,
                fd_json=report,
            )
        except Exception as exc:  # pyx12 raises EngineError and others on unknown input
            return False, [f"pyx12 stopped: {type(exc).__name__}"]
    findings = _findings(report.getvalue())
    if not ok and not findings:
        findings = ["pyx12 refused the document without a finding"]
    return ok and not findings, findings


def _findings(report: str) -> list[str]:
    try:
        document = json.loads(report) if report else {}
    except ValueError:
        return ["pyx12 wrote an unreadable report"]
    found: list[str] = []
    for interchange in document.get("interchanges", []):
        found += _envelope("ISA", interchange)
        for group in interchange.get("groups", []):
            found += _envelope("GS", group)
            for transaction in group.get("transactions", []):
                found += _envelope("ST", transaction)
                for segment in transaction.get("segments", []):
                    found += _segment(segment)
    return found


def _envelope(level: str, node: dict[str, Any]) -> list[str]:
    # Envelope findings name control numbers, counts and versions only: said as written.
    line = node.get("cur_line")
    return [
        f"line {line} {level} error {error.get('err_cde')}: {error.get('err_str')}"
        for error in node.get("errors", [])
    ]


def _segment(segment: dict[str, Any]) -> list[str]:
    seg_id = segment.get("seg_id") or "?"
    where = f"line {segment.get('cur_line')} {seg_id} ({segment.get('name')})"
    found = [
        f"{where}: {_rule(SEGMENT_ERRORS, error.get('err_cde'))}"
        for error in segment.get("errors", [])
    ]
    for element in segment.get("elements", []):
        reference = f"{seg_id}{element.get('ele_pos') or 0:02d}"
        if element.get("subele_pos"):
            reference += f"-{element['subele_pos']}"
        place = f"line {segment.get('cur_line')} {reference} ({element.get('name')})"
        found += [
            f"{place}: {_rule(ELEMENT_ERRORS, error.get('err_cde'))}"
            for error in element.get("errors", [])
        ]
    return found


def _rule(rules: dict[str, str], code: object) -> str:
    return f"{rules.get(str(code), 'error')} ({code})"
