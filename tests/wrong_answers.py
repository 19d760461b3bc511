"""Answers of the wrong kind that no exercise checker may crash on: one that raises, one that returns
None (a forgotten `return`), one that returns text. Each must come back as ❌ with a message that says
what went wrong, never a traceback. The test files of the checkers (test_exercises_nb*.py) share these."""

import pytest

from course_lib.exercises import FAILED


def raises_key_error(*args, **kwargs):
    return {}["missing"]


def returns_none(*args, **kwargs):
    return None


def returns_text(*args, **kwargs):
    return "12.5"


WHAT_THE_MESSAGE_NAMES = {raises_key_error: ("KeyError",), returns_none: ("None",), returns_text: ("str", "'12.5'")}

wrong_kinds = pytest.mark.parametrize("answer", list(WHAT_THE_MESSAGE_NAMES),
                                      ids=["raises", "returns None", "returns a str"])


def assert_fails_naming_it(result, answer, says: dict | None = None) -> None:
    """`result` is ❌, without a traceback, and its message names the error or the kind that came back;
    `says` (answer -> text) adds the exact words a notebook's checkers use for each answer."""
    assert result.status == FAILED, result
    assert str(result).startswith("❌") and "Traceback" not in result.detail and len(result.detail) > 20
    assert any(word in result.detail for word in WHAT_THE_MESSAGE_NAMES[answer]), result.detail
    if says is not None:
        assert says[answer] in result.detail, (says[answer], result.detail)
