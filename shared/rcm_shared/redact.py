"""What may be said about a failure once it leaves the process: its kind and where, never
values.

Dead-letter headers, logs, stored errors and HTTP answers outlive the request and reach
people who may not see patient data. Exception messages often quote the input (pydantic's
`input_value`, a 271 element, a clearinghouse body), so only messages written under the
rule "ids and rules, never patient values" (`Redacted` errors: refusals, malformed
envelopes) are said as they are; of every other error only the class and the place it was
raised are.
"""

from __future__ import annotations

import os
import traceback

from pydantic import ValidationError

MAX_LENGTH = 1000


class Redacted:
    """A mixin for errors whose message was written to be said outside the process."""


def problems(error: ValidationError) -> str:
    """The validation problems with their locations, without the offending values."""
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
        for problem in error.errors(include_input=False, include_url=False)
    )


def describe(error: BaseException) -> str:
    """A one-line account of `error` that is safe to log, store and send anywhere."""
    kind = type(error).__name__
    if isinstance(error, Redacted):
        said = f"{kind}: {error}"
    elif isinstance(error, ValidationError):
        said = f"{kind}: {problems(error)}"
    else:
        said = f"{kind} at {where(error)}"
    return said[:MAX_LENGTH]


def where(error: BaseException) -> str:
    """The innermost frame the error passed through: file, line and function."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "an unknown place"
    frame = frames[-1]
    return f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
