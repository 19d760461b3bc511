"""Notebook 05's checkers pass right answers, explain wrong ones, and wait for unsolved ones."""

import math
from collections import Counter

import torch

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
