"""Notebook 09's checkers accept the right answers, reject common wrong ones with a useful message,
report an untouched exercise as not attempted, and never crash: an answer that raises, returns None or
returns a str is a failed result that names the input and what came back."""

import pytest
import torch

from wrong_answers import assert_fails_naming_it, raises_key_error, returns_none, returns_text, wrong_kinds

from course_lib import chat
from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, nb09
from course_lib.llama import repeat_kv


def todo(*args):
    raise NotImplementedError


def test_untouched_exercises_are_not_attempted_yet():
    for exercise in (nb09.exercise_1, nb09.exercise_2, nb09.exercise_3, nb09.exercise_4):
        assert exercise(todo).status == NOT_ATTEMPTED


def test_exercise_1_accepts_rmsnorm_and_names_layernorm_when_given_it():
    good = nb09.exercise_1(lambda x, w, eps: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w)
    assert good.status == PASSED
    layer_norm = nb09.exercise_1(lambda x, w, eps: torch.nn.functional.layer_norm(x, x.shape[-1:], w, eps=eps))
    assert layer_norm.status == FAILED and "LayerNorm" in layer_norm.detail


def test_exercise_2_accepts_repeat_interleave_and_explains_tiled_heads():
    assert nb09.exercise_2(repeat_kv).status == PASSED
    tiled = nb09.exercise_2(lambda k, n: k.repeat(1, n, 1, 1))
    assert tiled.status == FAILED and "h // n_rep" in tiled.detail


def test_exercise_3_accepts_examples_as_turns_and_rejects_them_in_one_message():
    def good(examples, question, system):
        turns = [m for q, a in examples for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
        return [{"role": "system", "content": system}] + turns + [{"role": "user", "content": question}]

    def one_message(examples, question, system):
        text = "\n".join(f"{q} {a}" for q, a in examples) + "\n" + question
        return [{"role": "system", "content": system}, {"role": "user", "content": text}]

    assert nb09.exercise_3(good).status == PASSED
    assert nb09.exercise_3(one_message).status == FAILED


def test_exercise_4_accepts_a_validating_parser_and_rejects_one_that_crashes_or_trusts_the_reply():
    def good(reply):
        obj = chat.parse_json_object(reply)
        value = obj.get("sentiment") if obj else None
        return value.lower() if isinstance(value, str) and value.lower() in ("positive", "negative") else None

    def crashes(reply):
        import json
        return json.loads(reply)["sentiment"].lower()

    assert nb09.exercise_4(good).status == PASSED
    crash = nb09.exercise_4(crashes)
    assert crash.status == FAILED and "return None for invalid JSON" in crash.detail


def good_few_shot(examples, question, system):
    turns = [m for q, a in examples for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    return [{"role": "system", "content": system}] + turns + [{"role": "user", "content": question}]


def good_sentiment(reply):
    obj = chat.parse_json_object(reply)
    value = obj.get("sentiment") if obj else None
    return value.lower() if isinstance(value, str) and value.lower() in ("positive", "negative") else None


REFERENCE = {
    nb09.exercise_1: lambda x, w, eps: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w,
    nb09.exercise_2: repeat_kv,
    nb09.exercise_3: good_few_shot,
    nb09.exercise_4: good_sentiment,
}


@pytest.mark.parametrize("exercise", list(REFERENCE), ids=lambda e: e.__name__)
def test_the_reference_answer_passes(exercise):
    assert exercise(REFERENCE[exercise]).status == PASSED


@pytest.mark.parametrize("exercise", list(REFERENCE), ids=lambda e: e.__name__)
@wrong_kinds
def test_an_answer_that_raises_or_returns_none_or_a_str_fails_with_a_message(exercise, answer):
    says = {raises_key_error: "raised KeyError", returns_none: "None (does your function `return`",
            returns_text: "'12.5'"}
    assert_fails_naming_it(exercise(answer), answer, says)  # no traceback escapes


def test_the_input_that_broke_the_answer_is_named():
    result = nb09.exercise_1(raises_key_error)
    assert "rms_norm(x of shape (4,), weight, 1e-5) raised KeyError" in result.detail
    crash = nb09.exercise_4(lambda reply: __import__("json").loads(reply)["sentiment"].lower())
    assert "sentiment_from_json('Sure! Here is the JSON" in crash.detail
