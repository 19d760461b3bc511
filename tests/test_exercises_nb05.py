"""Notebook 05's checkers pass right answers, explain wrong ones, and wait for unsolved ones."""

import math
from collections import Counter

import pytest
import torch

from wrong_answers import assert_fails_naming_it, raises_key_error, returns_none, returns_text, wrong_kinds

from course_lib.embeddings import sinusoidal_positions
from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, nb05
from course_lib.tokenizer import merge_pair


def unsolved(*args):
    raise NotImplementedError


def test_unsolved_exercises_are_not_attempted():
    assert all(check(unsolved).status == NOT_ATTEMPTED
               for check in (nb05.exercise_1, nb05.exercise_2, nb05.exercise_3, nb05.exercise_4))


def test_right_answers_pass():
    assert nb05.exercise_1(lambda ids: Counter(zip(ids, ids[1:]))).status == PASSED
    assert nb05.exercise_2(merge_pair).status == PASSED
    assert nb05.exercise_3(lambda ids, w: torch.nn.functional.one_hot(ids, w.shape[0]).float() @ w).status == PASSED
    assert nb05.exercise_4(sinusoidal_positions).status == PASSED


def test_counting_only_distinct_pairs_is_reported_with_the_failing_input():
    result = nb05.exercise_1(lambda ids: {pair: 1 for pair in zip(ids, ids[1:])})
    assert result.status == FAILED and "count_pairs([1, 2, 3, 1, 2])" in result.detail


def test_a_merge_that_overlaps_pairs_is_told_about_overlaps():
    def overlapping(ids, pair, new_id):
        out = []
        for i, x in enumerate(ids):
            if i + 1 < len(ids) and (x, ids[i + 1]) == pair:
                out.append(new_id)
            elif not (i > 0 and (ids[i - 1], x) == pair):
                out.append(x)
        return out

    result = nb05.exercise_2(overlapping)
    assert result.status == FAILED and "Overlapping pairs" in result.detail


def test_swapped_sin_and_cos_are_named():
    def swapped(n, d):
        table = torch.zeros(n, d)
        for p in range(n):
            for i in range(d // 2):
                angle = p / 10000 ** (2 * i / d)
                table[p, 2 * i], table[p, 2 * i + 1] = math.cos(angle), math.sin(angle)
        return table

    result = nb05.exercise_4(swapped)
    assert result.status == FAILED and "sin and cos are swapped" in result.detail


def test_an_embedding_of_the_wrong_shape_says_so():
    result = nb05.exercise_3(lambda ids, w: w[ids.flatten()])
    assert result.status == FAILED and "shape" in result.detail


# --- every exercise survives the three commonest non-answers: a crash, a forgotten return, a string ---

EXERCISES = {"count_pairs": nb05.exercise_1, "merge": nb05.exercise_2, "embed": nb05.exercise_3,
             "positions": nb05.exercise_4}


SAYS = {raises_key_error: "raised KeyError", returns_none: "`return`", returns_text: "not text"}


@pytest.mark.parametrize("name", EXERCISES)
@wrong_kinds
def test_a_non_answer_fails_with_a_message_not_a_traceback(name, answer):
    result = EXERCISES[name](answer)
    assert_fails_naming_it(result, answer, SAYS)
    if answer is raises_key_error:
        assert "line" in result.detail  # where in the learner's code


def test_an_index_error_at_the_end_of_the_list_gets_the_loop_bound_hint():
    def count_pairs(ids):
        counts = {}
        for i in range(len(ids)):
            pair = (ids[i], ids[i + 1])
            counts[pair] = counts.get(pair, 0) + 1
        return counts

    result = nb05.exercise_1(count_pairs)
    assert result.status == FAILED and "IndexError" in result.detail and "range(len(ids) - 1)" in result.detail


def test_pairs_as_keys_are_required():
    result = nb05.exercise_1(lambda ids: Counter(f"{a},{b}" for a, b in zip(ids, ids[1:])))
    assert result.status == FAILED and "pair (a, b)" in result.detail


def test_a_one_hot_left_as_integers_is_told_to_convert_to_float():
    result = nb05.exercise_3(lambda ids, w: torch.nn.functional.one_hot(ids, w.shape[0]) @ w)
    assert result.status == FAILED and ".float()" in result.detail


def test_a_one_hot_without_num_classes_is_told_to_pass_it():
    result = nb05.exercise_3(lambda ids, w: torch.nn.functional.one_hot(ids).float() @ w)
    assert result.status == FAILED and "num_classes=weight.shape[0]" in result.detail


def test_a_cosine_column_with_its_own_angle_is_named():
    def own_angle(n, d):
        angles = torch.arange(n)[:, None] / 10000 ** (torch.arange(d) / d)
        table = angles.sin()
        table[:, 1::2] = angles[:, 1::2].cos()
        return table

    result = nb05.exercise_4(own_angle)
    assert result.status == FAILED and "share one angle" in result.detail


def test_a_float64_table_that_is_right_passes():
    assert nb05.exercise_4(lambda n, d: sinusoidal_positions(n, d).double()).status == PASSED
