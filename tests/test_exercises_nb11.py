"""Notebook 11's checkers pass right answers, explain wrong ones, wait for unattempted ones, and never
crash: an answer that raises, returns None or returns a str is a failed result with a message."""

import numpy as np
import pytest
import torch

from wrong_answers import assert_fails_naming_it, raises_key_error, returns_none, returns_text, wrong_kinds

from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, nb11


def not_yet(*args):
    raise NotImplementedError


def absmax_int8(x):
    scale = x.abs().max() / 127
    return (x / scale).round().to(torch.int8), scale


REFERENCE = {
    nb11.exercise_1: lambda L, h, d, s, b, n: 2 * L * h * d * s * b * n,
    nb11.exercise_2: absmax_int8,
    nb11.exercise_3: lambda c: c[..., 0::2] | (c[..., 1::2] << 4),
    nb11.exercise_4: lambda p, n, b: 2 * (n - 1) / n * p * b,
}

INPUT_NAMED = {nb11.exercise_1: "kv_cache_bytes(32, 32, 128, 4096, 1, 2)", nb11.exercise_2: "absmax_int8(tensor of shape (4,))",
               nb11.exercise_3: "pack_int4([1, 2])", nb11.exercise_4: "all_reduce_bytes(1e+09, world=2, bytes_per_value=2)"}


@pytest.mark.parametrize("exercise", list(REFERENCE), ids=lambda e: e.__name__)
def test_the_reference_answer_passes_and_the_unsolved_one_is_not_attempted(exercise):
    assert exercise(REFERENCE[exercise]).status == PASSED
    assert exercise(not_yet).status == NOT_ATTEMPTED


@pytest.mark.parametrize("exercise", list(REFERENCE), ids=lambda e: e.__name__)
@wrong_kinds
def test_an_answer_that_raises_or_returns_the_wrong_kind_fails_with_a_message(exercise, answer):
    says = {raises_key_error: "raised KeyError: 'missing'",
            returns_none: "got None (does your function `return` its result?)",
            returns_text: "got the string '12.5' (return the value itself, not text)"}
    result = exercise(answer)  # no traceback escapes
    assert_fails_naming_it(result, answer, says)
    assert INPUT_NAMED[exercise] in result.detail  # the input it failed on


@pytest.mark.parametrize("exercise, answer, says", [
    (nb11.exercise_2, lambda x: (None, 1.0), "codes: expected a torch.Tensor of int8 codes, got None"),
    (nb11.exercise_2, lambda x: (torch.zeros(x.shape, dtype=torch.int8), "0.01"), "scale: expected one number"),
    (nb11.exercise_2, lambda x: (torch.zeros(x.shape, dtype=torch.int8), None), "scale: expected one number"),
    (nb11.exercise_3, lambda c: c.float()[..., 0::2] | (c.float()[..., 1::2] << 4), "lshift_cpu\" not implemented"),
    (nb11.exercise_4, lambda p, n, b: p / (n - n), "raised ZeroDivisionError"),
], ids=["codes None", "scale str", "scale None", "float codes", "division by zero"])
def test_errors_and_wrong_kinds_inside_an_answer_are_named(exercise, answer, says):
    result = exercise(answer)
    assert result.status == FAILED and says in result.detail


def test_numpy_numbers_and_one_element_tensors_count_as_numbers():
    assert nb11.exercise_1(lambda L, h, d, s, b, n: np.int64(2 * L * h * d * s * b * n)).status == PASSED
    assert nb11.exercise_4(lambda p, n, b: torch.tensor(2 * (n - 1) / n * p * b, dtype=torch.float64)).status == PASSED
    assert nb11.exercise_2(lambda x: (absmax_int8(x)[0], float(absmax_int8(x)[1]))).status == PASSED


def test_kv_cache_checker_names_the_missing_value():
    half = nb11.exercise_1(lambda L, h, d, s, b, n: L * h * d * s * b * n)
    assert half.status == FAILED and "a key AND a value" in half.detail


def test_absmax_checker_names_dtype_and_scale_mistakes():
    wrong_dtype = nb11.exercise_2(lambda x: (torch.round(x / (x.abs().max() / 127)), x.abs().max() / 127))
    assert wrong_dtype.status == FAILED and "dtype" in wrong_dtype.detail
    wrong_scale = nb11.exercise_2(lambda x: ((x / (x.abs().max() / 255)).round().clamp(-128, 127).to(torch.int8),
                                             x.abs().max() / 255))
    assert wrong_scale.status == FAILED and "scale" in wrong_scale.detail


def test_pack_checker_names_swapped_nibbles():
    swapped = nb11.exercise_3(lambda c: (c[..., 0::2] << 4) | c[..., 1::2])
    assert swapped.status == FAILED and "swapped" in swapped.detail


def test_all_reduce_checker_names_a_lone_reduce_scatter():
    half = nb11.exercise_4(lambda p, n, b: (n - 1) / n * p * b)
    assert half.status == FAILED and "reduce-scatter" in half.detail


def test_a_pytorch_not_implemented_error_is_a_mistake_not_an_unattempted_exercise():
    result = nb11.exercise_3(lambda c: c.float()[..., 0::2] | (c.float()[..., 1::2] << 4))  # shifts floats
    assert result.status == FAILED
    assert "pack_int4([1, 2]) raised NotImplementedError" in result.detail and "torch.uint8" in result.detail
