"""The one place course_lib checks the arguments it is given at its public boundary.

course_lib's public functions and classes check what they receive before they compute, with these
helpers wherever the check is a common one, so a wrong argument fails at once with a message that
names the argument, says what was expected and shows what came:
"alpha: expected an int or float, got str ('8')". A bool never passes as an int. When two different
classes share a name (transformers' `LlamaConfig` and course_lib's), the message gives the module
of both.

Wrong-type errors are TypeError, wrong values ValueError, missing files FileNotFoundError. One
convention older than this module is kept: the count checks (`check_positive_int`,
`check_non_negative_int`) raise ValueError for anything that is not a whole number in range, 2.5 and
"3" included, as course_lib always has.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, mtime_ns, size) -> sha256, computed once per file


def _article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def describe(value: object, qualified: bool = False) -> str:
    """The type of `value` (with its module if `qualified`), and for a built-in value a short repr."""
    cls = type(value)
    name = f"{cls.__module__}.{cls.__qualname__}" if qualified else cls.__name__
    if cls.__module__ == "builtins" and value is not None:
        text = repr(value)
        return f"{name} ({text[:57] + '...' if len(text) > 60 else text})"
    return name


def check_type(name: str, value: T, expected: type | tuple[type, ...], what: str | None = None) -> T:
    """`value` itself if it is an instance of `expected` (a bool only if bool is expected), else TypeError.

    `what` replaces the expected part of the message ("a torch.Tensor of token ids").
    """
    classes = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, classes) and not (isinstance(value, bool) and bool not in classes):
        return value
    same_name = any(cls.__name__ == type(value).__name__ for cls in classes)
    if same_name:  # two classes called LlamaConfig: only their modules tell them apart
        wanted = " or ".join(f"{cls.__module__}.{cls.__qualname__}" for cls in classes)
    else:
        wanted = what or " or ".join([_article(classes[0].__name__)] + [cls.__name__ for cls in classes[1:]])
    raise TypeError(f"{name}: expected {wanted}, got {describe(value, qualified=same_name)}")


def check_text(name: str, value: object) -> str:
    """`value` if it is a str, else TypeError."""
    return check_type(name, value, str, "a str")


def check_number(name: str, value: object, positive: bool = False, what: str = "a number") -> float:
    """`value` as a float if it is an int or a float (not a bool; TypeError), and > 0 if `positive` (ValueError).

    `what` is the expected type as the message says it ("a number", "an int or float").
    """
    check_type(name, value, (int, float), what)
    if positive and not value > 0:  # also refuses nan
        raise ValueError(f"{name}: expected a positive number, got {value}")
    return float(value)


def check_int(name: str, value: object, low: int | None = None, high: int | None = None,
              what: str | None = None) -> int:
    """`value` if it is an int (not a bool; TypeError) in [low, high] (ValueError); `what` describes the range."""
    check_type(name, value, int, "an int")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name}: expected {what or 'an int in ' + bounds}, got {value}")
    return value


def check_positive_int(name: str, value: object, allow_none: bool = False) -> Any:
    """`value` if it is an int >= 1 (or None when allowed); ValueError for anything else, bool included."""
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive int{' or None' if allow_none else ''}, got {value!r}")
    return value


def check_non_negative_int(name: str, value: object, what: str = "a non-negative int") -> int:
    """`value` if it is an int >= 0; ValueError for anything else, bool included."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return value


def check_choice(name: str, value: T, choices: Collection) -> T:
    """`value` if it is one of `choices` (shown as given: pass a sorted list for a dict), else ValueError."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices!r}, got {value!r}")
    return value


def check_file(name: str, path: str | os.PathLike, hint: str) -> Path:
    """`path` as a Path if it is an existing file; else FileNotFoundError naming it and `hint` (what creates it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: {path} {'is a folder' if path.is_dir() else 'does not exist'}; {hint}")
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, computed once per process while its mtime and size stay the same."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def check_sha256(path: str | os.PathLike, expected: str, fix_hint: str) -> Path:
    """`path` as a Path if its sha256 is `expected`; else ValueError naming the file, both digests and the fix."""
    actual = file_sha256(path)
    if actual != expected.lower():
        raise ValueError(f"{path}: sha256 {actual[:16]}... does not match the expected {expected[:16]}...; "
                         f"the file was changed or damaged. {fix_hint}")
    return Path(path)


def check_ids_below(name: str, ids: Any, vocab_size: int) -> None:
    """ValueError if an integer tensor of token ids holds a value < 0 or >= vocab_size (shows the range found)."""
    if ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(f"{name}: token ids must be in [0, vocab_size={vocab_size}), "
                             f"got values from {low} to {high}")


__all__ = ["check_choice", "check_file", "check_ids_below", "check_int", "check_non_negative_int", "check_number",
           "check_positive_int", "check_sha256", "check_text", "check_type", "describe", "file_sha256"]
