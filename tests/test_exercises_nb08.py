"""Notebook 08's checkers accept the right answers, name the usual mistakes, wait for attempts, and never
crash: an answer that raises, returns None or returns a str is a failed result with a message."""

import pytest
import torch
import torch.nn.functional as F

from wrong_answers import assert_fails_naming_it, raises_key_error, returns_none, returns_text, wrong_kinds

from course_lib.exercises import FAILED, PASSED, nb08


def not_yet(*args):
    raise NotImplementedError


def test_unattempted_exercises_are_marked_not_attempted():
    for checker in (nb08.exercise_1, nb08.exercise_2, nb08.exercise_3, nb08.exercise_4):
        assert checker(not_yet).status == "not attempted yet"


def test_exercise_1_training_days():
    right = lambda n, d, g, peak, mfu: 6 * n * d / (g * peak * mfu) / 86_400
    assert nb08.exercise_1(right).passed
    seconds = nb08.exercise_1(lambda n, d, g, peak, mfu: 6 * n * d / (g * peak * mfu))
    assert not seconds.passed and "86,400" in seconds.detail
    one_flop = nb08.exercise_1(lambda n, d, g, peak, mfu: n * d / (g * peak * mfu) / 86_400)
    assert "6 (2 forward, 4 backward)" in one_flop.detail


def test_exercise_2_lora_count():
    assert nb08.exercise_2(lambda d_in, d_out, r: r * (d_in + d_out)).passed
    assert "frozen matrix" in nb08.exercise_2(lambda d_in, d_out, r: d_in * d_out).detail
    assert "only one of the two" in nb08.exercise_2(lambda d_in, d_out, r: r * d_in).detail


def test_exercise_3_reward_loss():
    assert nb08.exercise_3(lambda c, r: -F.logsigmoid(c - r).mean()).passed
    assert "sign is flipped" in nb08.exercise_3(lambda c, r: -F.logsigmoid(r - c).mean()).detail
    unstable = nb08.exercise_3(lambda c, r: -torch.log(torch.sigmoid(c - r)).mean())
    assert not unstable.passed and "logsigmoid" in unstable.detail
    assert "single number" in nb08.exercise_3(lambda c, r: -F.logsigmoid(c - r)).detail


def test_exercise_4_ppo_objective():
    right = lambda ratio, a, eps: min(ratio * a, min(max(ratio, 1 - eps), 1 + eps) * a)
    assert nb08.exercise_4(right).passed
    took_max = nb08.exercise_4(lambda ratio, a, eps: max(ratio * a, min(max(ratio, 1 - eps), 1 + eps) * a))
    assert "took the max" in took_max.detail
    clipped_only = nb08.exercise_4(lambda ratio, a, eps: min(max(ratio, 1 - eps), 1 + eps) * a)
    assert "clipped term alone" in clipped_only.detail


# --- no answer crashes a checker: raising, returning None or a str is a failed result with a message ------

REFERENCE = {
    nb08.exercise_1: lambda n, d, g, peak, mfu: 6 * n * d / (g * peak * mfu) / 86_400,
    nb08.exercise_2: lambda d_in, d_out, r: r * (d_in + d_out),
    nb08.exercise_3: lambda c, r: -F.logsigmoid(c - r).mean(),
    nb08.exercise_4: lambda ratio, a, eps: min(ratio * a, min(max(ratio, 1 - eps), 1 + eps) * a),
}


@pytest.mark.parametrize("exercise", list(REFERENCE), ids=lambda e: e.__name__)
def test_the_reference_answer_passes(exercise):
    assert exercise(REFERENCE[exercise]).status == PASSED


@pytest.mark.parametrize("exercise", list(REFERENCE), ids=lambda e: e.__name__)
@wrong_kinds
def test_an_answer_that_raises_or_returns_no_number_fails_with_a_message(exercise, answer):
    says = {raises_key_error: "raised KeyError", returns_none: "returned None", returns_text: "the string '12.5'"}
    result = exercise(answer)  # no traceback escapes
    assert_fails_naming_it(result, answer, says)
    assert "(" in result.detail.split(says[answer])[0]  # the input it was called with comes first


def test_a_crash_names_the_input_and_the_line():
    result = nb08.exercise_4(lambda ratio, a, eps: [ratio][2])
    assert result.status == FAILED
    assert "ppo_objective(ratio=1.5, advantage=1.0, epsilon=0.2) raised IndexError" in result.detail
