"""The exercise checkers report passed / failed-with-a-reason / not attempted."""

import numpy as np
import pytest

from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, Mismatch, call, check, expect_close, expect_equal, what_it_is


def test_an_unsolved_exercise_is_reported_as_not_attempted():
    def attempt():
        raise NotImplementedError

    result = check("1", attempt)
    assert result.status == NOT_ATTEMPTED
    assert "NotImplementedError" in repr(result)


def test_a_wrong_answer_says_what_was_expected_and_what_came():
    result = check("2", lambda: expect_equal("le cat", "the cat", "translate('le chat')"))
    assert result.status == FAILED
    assert "expected 'the cat', got 'le cat'" in result.detail


def test_close_numbers_pass_and_far_ones_name_the_difference():
    assert check("3", lambda: expect_close(np.array([1.0, 2.0]), [1.0, 2.0 + 1e-9], "v")).status == PASSED
    failed = check("3", lambda: expect_close(np.array([1.0, 2.5]), [1.0, 2.0], "v", tol=1e-3))
    assert failed.status == FAILED and "largest difference 0.5" in failed.detail
    shape = check("3", lambda: expect_close(np.zeros(3), np.zeros(2), "v"))
    assert "expected shape (2,), got shape (3,)" in shape.detail


def test_an_answer_that_raises_is_a_failed_result_naming_the_error_and_the_line_not_a_traceback():
    def learners_translate(words):
        dictionary = {"le": "the", "chat": "cat"}
        return [dictionary[w] for w in words]  # KeyError on a word it does not know

    result = check("2", lambda: learners_translate(["le", "chien"]))
    assert result.status == FAILED
    assert "your code raised KeyError: 'chien'" in result.detail
    assert "of `<listcomp>`" in result.detail or "of `learners_translate`" in result.detail
    assert "line" in result.detail and str(result).startswith("❌")


def test_an_error_without_a_message_is_still_named():
    def broken():
        raise ValueError()

    assert "your code raised ValueError (line" in check("1", broken).detail


def test_a_keyboard_interrupt_is_not_swallowed():
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        check("1", interrupted)


def test_call_names_the_input_the_error_and_the_hint_for_it():
    def learner(d, word):
        return d[word]

    with pytest.raises(Mismatch) as raised:
        call("learner({}, 'chat')", learner, {}, "chat", hint=lambda e: " use d.get(word)." if isinstance(e, KeyError) else "")
    message = str(raised.value)
    assert message.startswith("learner({}, 'chat') raised KeyError: 'chat' (line ")
    assert message.endswith(" use d.get(word).")


def test_call_without_a_specific_hint_says_how_to_find_out():
    with pytest.raises(Mismatch, match="raised ZeroDivisionError: division by zero .*Run your function on that input"):
        call("f(0)", lambda x: 1 / x, 0)


def test_call_lets_not_attempted_through_and_returns_the_answer():
    def unsolved():
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        call("unsolved()", unsolved)
    assert call("double(2)", lambda x: 2 * x, 2) == 4


def test_a_library_not_implemented_error_is_a_mistake_not_an_unattempted_exercise():
    import torch

    def shifts_floats():
        return torch.tensor([1.0]) << 4  # PyTorch: "lshift_cpu" not implemented for 'Float'

    result = check("1", shifts_floats)
    assert result.status == FAILED and "your code raised NotImplementedError: " in result.detail
    with pytest.raises(Mismatch, match=r"^shift\(\) raised NotImplementedError: .*not implemented for 'Float'"):
        call("shift()", shifts_floats)


def test_a_wrong_kind_of_answer_is_named_for_the_learner():
    assert what_it_is(None) == "None (does your function `return` its result?)"
    assert what_it_is("0.5") == "the string '0.5' (return the value itself, not text)"
    assert what_it_is([1]) == "list"
