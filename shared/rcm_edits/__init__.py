"""Edit packs: NCCI PTP and MUE edits and the scrubber's own rules, versioned and
effective-dated, with a loader for CMS's published files and the engine that runs them."""

from .engine import ClaimFacts, LineFacts, check, errors
from .packs import Library, Pack, PackError, Severity, load_library

__all__ = [
    "ClaimFacts",
    "Library",
    "LineFacts",
    "Pack",
    "PackError",
    "Severity",
    "check",
    "errors",
    "load_library",
]
