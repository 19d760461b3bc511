"""Notebook 10's checkers pass a correct answer, name the usual mistakes, and wait for an unsolved one."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.tools import ToolException, tool
from qdrant_client import models

from wrong_answers import assert_fails_naming_it, raises_key_error, returns_none, returns_text, wrong_kinds

from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, nb10


def cosine_top_k(query, matrix, k):
    matrix, query = np.asarray(matrix, float), np.asarray(query, float)
    scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
    return list(np.argsort(-scores)[:k])


def test_exercise_1_passes_cosine_and_explains_the_plain_dot_product():
    assert nb10.exercise_1(cosine_top_k).status == PASSED
    by_dot = nb10.exercise_1(lambda q, m, k: list(np.argsort(-(np.asarray(m) @ q))[:k]))
    assert by_dot.status == FAILED and "plain dot product" in by_dot.detail
    reversed_order = nb10.exercise_1(lambda q, m, k: cosine_top_k(q, m, k)[::-1])
    assert reversed_order.status == FAILED and "wrong order" in reversed_order.detail


def test_exercise_1_waits_for_an_unsolved_answer():
    def unsolved(query, matrix, k):
        raise NotImplementedError

    assert nb10.exercise_1(unsolved).status == NOT_ATTEMPTED


def test_exercise_2_passes_recall_and_names_a_count_instead_of_a_share():
    def recall(retrieved, gold, k):
        return sum(g in r[:k] for r, g in zip(retrieved, gold)) / len(gold)

    assert nb10.exercise_2(recall).status == PASSED
    count = nb10.exercise_2(lambda r, g, k: sum(x in y[:k] for y, x in zip(r, g)))
    assert count.status == FAILED and "count of hits" in count.detail
    ignores_k = nb10.exercise_2(lambda r, g, k: recall(r, g, 3))
    assert ignores_k.status == FAILED and "first k" in ignores_k.detail


def test_exercise_3_passes_a_tool_that_reports_errors_and_fails_one_that_crashes():
    @tool
    def safe_divide(a: float, b: float) -> str:
        """Divide a by b."""
        if b == 0:
            raise ToolException("Error: cannot divide by zero; choose a non-zero b.")
        return str(a / b)

    safe_divide.handle_tool_error = True
    safe_divide.handle_validation_error = lambda e: f"Error: bad arguments: {e.errors()[0]['msg']}"
    assert nb10.exercise_3(safe_divide).status == PASSED

    @tool
    def crashing_divide(a: float, b: float) -> str:
        """Divide a by b."""
        return str(a / b)

    crashed = nb10.exercise_3(crashing_divide)
    assert crashed.status == FAILED and "raised ZeroDivisionError" in crashed.detail

    def plain(a, b):
        return str(a / b)

    assert "decorate it with @tool" in nb10.exercise_3(plain).detail


def test_exercise_4_passes_should_and_explains_must():
    def either(first, second):
        return models.Filter(should=[models.FieldCondition(key="notebook", match=models.MatchValue(value=v))
                                     for v in (first, second)])

    assert nb10.exercise_4(either).status == PASSED
    both = nb10.exercise_4(lambda a, b: models.Filter(must=either(a, b).should))
    assert both.status == FAILED and "`must`" in both.detail
    any_of = nb10.exercise_4(lambda a, b: models.Filter(must=[models.FieldCondition(
        key="notebook", match=models.MatchAny(any=[a, b]))]))
    assert any_of.status == PASSED  # MatchAny inside must is another correct spelling


@pytest.mark.parametrize("exercise", [nb10.exercise_1, nb10.exercise_2, nb10.exercise_3, nb10.exercise_4],
                         ids=lambda e: e.__name__)
@wrong_kinds
def test_an_answer_that_raises_or_returns_none_or_text_fails_with_a_message(exercise, answer):
    result = exercise(answer)  # no traceback escapes
    if "@tool" in result.detail:  # exercise 3 refuses a plain function that returns: it must be a @tool
        assert exercise is nb10.exercise_3 and result.status == FAILED
    else:
        says = {raises_key_error: "KeyError", returns_none: "None", returns_text: "str"}
        assert_fails_naming_it(result, answer, says)
