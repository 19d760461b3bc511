"""Checkers for the exercises at the end of each notebook: they say what is wrong, not only "wrong".

Each notebook has a module here (`course_lib.exercises.nb01`, ...) whose functions take the
learner's answer and return a `Result`. An answer that still raises `NotImplementedError` is
"not attempted yet", so the exercise cells run (and are checked by nbval) before anyone solves them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted yet"
_MARK = {PASSED: "✅", FAILED: "❌", NOT_ATTEMPTED: "⏳"}


class Mismatch(AssertionError):
    """Raised inside a checker: its message tells the learner what differs and what was expected."""


@dataclass(frozen=True)
class Result:
    exercise: str
    status: str
    detail: str

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __repr__(self) -> str:
        return f"{_MARK[self.status]} Exercise {self.exercise}: {self.status}. {self.detail}".rstrip()

    __str__ = __repr__


def _where_in_learner_code(error: BaseException) -> str:
    """' (line N of `function`)' for the deepest frame of the traceback that is the learner's code
    (not course_lib, not an installed library), or '' if there is none."""
    import os
    import traceback

    library = (os.path.dirname(os.path.dirname(__file__)), os.sep + "site-packages" + os.sep,
               os.sep + "lib" + os.sep + "python")
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(library[0])
              and library[1] not in f.filename and library[2] not in f.filename]
    return f" (line {frames[-1].lineno} of `{frames[-1].name}`)" if frames else ""


def _not_attempted(error: BaseException) -> bool:
    """True for the exercise's placeholder, a bare `raise NotImplementedError`. A library's own
    NotImplementedError (PyTorch: '"lshift_cpu" not implemented for 'Float'') always has a message:
    that is a mistake in the learner's code, to be named like any other error."""
    return isinstance(error, NotImplementedError) and not str(error).strip()


def call(what: str, function: Callable, *args, hint: Callable[[BaseException], str] | None = None, **kwargs) -> Any:
    """Call the learner's `function`; an error it raises becomes a Mismatch naming the input (`what`), the
    error, the line of the learner's code, and `hint(error)`: what usually causes that error in this
    exercise ('' when there is nothing specific to say). The placeholder `raise NotImplementedError`
    passes through, so `check` reports the exercise as not attempted."""
    try:
        return function(*args, **kwargs)
    except Mismatch:
        raise
    except Exception as error:
        if _not_attempted(error):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        advice = (hint(error) if hint is not None else "") or " Run your function on that input to see why."
        raise Mismatch(f"{what} raised {type(error).__name__}{': ' + message if message else ''}"
                       f"{_where_in_learner_code(error)}.{advice}") from None


def what_it_is(value: Any) -> str:
    """How to name a wrong kind of answer: None gets a reminder about `return`, a string a word on text."""
    if value is None:
        return "None (does your function `return` its result?)"
    if isinstance(value, str):
        return f"the string {value[:40]!r} (return the value itself, not text)"
    return type(value).__name__


def check(exercise: str, attempt: Callable[[], Any], success: str = "") -> Result:
    """Run `attempt()`; a `Mismatch` becomes a failed Result with its message, NotImplementedError 'not attempted'.

    Any other error raised by the learner's code (a KeyError, a shape error from PyTorch) is a failed
    Result too, naming the error and where it happened, instead of a traceback that hides the hint.
    """
    try:
        attempt()
    except Mismatch as mismatch:
        return Result(exercise, FAILED, str(mismatch))
    except Exception as error:  # the learner's code crashed: say how, and keep the notebook going
        if _not_attempted(error):
            return Result(exercise, NOT_ATTEMPTED, "Replace the `raise NotImplementedError` with your answer.")
        message = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else ""
        return Result(exercise, FAILED, f"your code raised {type(error).__name__}"
                                        f"{': ' + message if message else ''}{_where_in_learner_code(error)}. "
                                        "Read the message, fix that line, and run the cell again.")
    return Result(exercise, PASSED, success)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(message)


def expect_equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise Mismatch(f"{what}: expected {expected!r}, got {actual!r}.")


def expect_close(actual: Any, expected: Any, what: str, tol: float = 1e-5) -> None:
    """Numbers, or array-likes of the same shape, equal within `tol` (absolute)."""
    import numpy as np

    try:
        a = np.asarray(getattr(actual, "detach", lambda: actual)(), dtype=float)
    except (TypeError, ValueError):
        raise Mismatch(f"{what}: expected a number or an array, got {type(actual).__name__}.") from None
    e = np.asarray(getattr(expected, "detach", lambda: expected)(), dtype=float)
    if a.shape != e.shape:
        raise Mismatch(f"{what}: expected shape {e.shape}, got shape {a.shape}.")
    if a.size and not np.all(np.isfinite(a)):
        raise Mismatch(f"{what}: contains NaN or infinity.")
    diff = float(np.max(np.abs(a - e))) if a.size else 0.0
    if not diff <= tol:
        shown = f"{float(e):.6g}, got {float(a):.6g}" if a.ndim == 0 else f"values within {tol}, largest difference {diff:.3g}"
        raise Mismatch(f"{what}: expected {shown}.")


def expect_type(value: Any, kind: type | tuple[type, ...], what: str) -> None:
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise Mismatch(f"{what}: expected a {names}, got {type(value).__name__}.")


__all__ = ["Mismatch", "Result", "check", "expect", "expect_equal", "expect_close", "expect_type",
           "PASSED", "FAILED", "NOT_ATTEMPTED", "math"]
