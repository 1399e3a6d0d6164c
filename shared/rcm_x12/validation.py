"""A second opinion from pyx12's validation engine (structure, codes, envelope counts).

pyx12 does not check money (an unbalanced 835 passes) and has no 5010 270/271 map.
"""

from __future__ import annotations

import functools
import io
import logging
import threading

import pyx12.map_if
import pyx12.params
import pyx12.x12n_document

_LOGGER = "pyx12"
# pyx12 reports through one global logger; serialise runs so reports do not mix.
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


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def validate_with_pyx12(text: str) -> tuple[bool, list[str]]:
    """Run pyx12's engine (not the x12valid command, whose exit status is not a verdict).

    Returns (ok, errors) where errors are pyx12's messages.
    """
    collector = _Collector()
    logger = logging.getLogger(_LOGGER)
    with _LOCK:
        logger.addHandler(collector)
        try:
            ok = pyx12.x12n_document.x12n_document(
                param=pyx12.params.params(),
                src_file=io.StringIO(text),
                fd_997=None,
                fd_html=None,
            )
        except Exception as exc:  # pyx12 raises EngineError and others on unknown input
            collector.messages.append(f"pyx12 stopped: {type(exc).__name__}: {exc}")
            ok = False
        finally:
            logger.removeHandler(collector)
    errors = collector.messages
    return ok and not errors, errors
