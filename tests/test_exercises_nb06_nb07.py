"""The checkers of notebook 06 pass the right answers and explain the usual wrong ones."""

import numpy as np
import pytest
import torch

from wrong_answers import assert_fails_naming_it, raises_key_error, returns_none, returns_text, wrong_kinds

from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, nb06


def unsolved(*args):
    raise NotImplementedError


def test_nb06_right_answers_pass():
    assert nb06.exercise_1(lambda x, h: x.view(x.shape[0], x.shape[1], h, -1).transpose(1, 2)).status == PASSED
    assert nb06.exercise_2(lambda n: torch.ones(n, n, dtype=torch.bool).tril()).status == PASSED
    assert nb06.exercise_3(lambda a, b: (b.weight @ a.weight, b.weight @ a.bias + b.bias)).status == PASSED
    assert nb06.exercise_4(lambda d, f: 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d).status == PASSED


def test_nb06_usual_mistakes_are_named():
    straight = nb06.exercise_1(lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1))
    assert straight.status == FAILED and "scrambled" in straight.detail
    upper = nb06.exercise_2(lambda n: torch.ones(n, n, dtype=torch.bool).triu())
    assert upper.status == FAILED and "lower triangle" in upper.detail
    bias = nb06.exercise_3(lambda a, b: (b.weight @ a.weight, b.bias))
    assert bias.status == FAILED and "second.weight @ first.bias" in bias.detail
    norms = nb06.exercise_4(lambda d, f: 4 * d * d + 4 * d + 2 * d * f + f + d)
    assert norms.status == FAILED and "LayerNorms" in norms.detail
    assert nb06.exercise_1(unsolved).status == NOT_ATTEMPTED


def nb06_block_parameters(d, f):
    return 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d


@pytest.mark.parametrize("as_given", [float, np.int64, torch.tensor, lambda n: n * (0.1 + 0.2) / 0.3],
                         ids=["float", "numpy int", "tensor", "float with rounding error"])
def test_nb06_a_numerically_correct_count_passes_whatever_its_type(as_given):
    assert nb06.exercise_4(lambda d, f: as_given(nb06_block_parameters(d, f))).status == PASSED


@pytest.mark.parametrize("off_by", [0.5, 1, -4])
def test_nb06_a_count_that_is_off_fails_and_says_which_way(off_by):
    result = nb06.exercise_4(lambda d, f: nb06_block_parameters(d, f) + off_by)
    assert result.status == FAILED
    assert ("more than" if off_by > 0 else "fewer than") in result.detail


def test_nb06_counting_one_layernorm_only_is_named():
    result = nb06.exercise_4(lambda d, f: nb06_block_parameters(d, f) - 2 * d)
    assert result.status == FAILED and "two LayerNorms" in result.detail


NB06_EXERCISES = [nb06.exercise_1, nb06.exercise_2, nb06.exercise_3, nb06.exercise_4]


@pytest.mark.parametrize("exercise", NB06_EXERCISES, ids=["split_heads", "causal_mask", "collapse", "block_parameters"])
@wrong_kinds
def test_nb06_a_non_answer_fails_with_a_message_not_a_traceback(exercise, answer):
    says = {raises_key_error: "raised KeyError", returns_none: "`return`", returns_text: "not text"}
    assert_fails_naming_it(exercise(answer), answer, says)


def test_nb06_view_after_transpose_gets_the_memory_layout_hint():
    result = nb06.exercise_1(lambda x, h: x.transpose(1, 2).view(x.shape[0], h, x.shape[1], -1))
    assert result.status == FAILED and "Call `view` before transposing" in result.detail


def test_nb06_a_transposed_product_gets_the_out_in_hint():
    result = nb06.exercise_3(lambda a, b: (a.weight @ b.weight, b.bias))
    assert result.status == FAILED and "second.weight @ first.weight" in result.detail
