"""The checkers of notebook 07 pass the right answers, explain the usual wrong ones, and never crash:
an answer that raises, returns None or returns a str is a failed result with a message."""

import pytest
import torch
import torch.nn.functional as F

from wrong_answers import assert_fails_naming_it, raises_key_error, returns_none, returns_text, wrong_kinds

from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, nb07

INF = float("-inf")


def unsolved(*args):
    raise NotImplementedError


def dropout(x, p, generator):
    return x * (torch.rand(x.shape, generator=generator) >= p) / (1 - p)


def top_k(logits, k):
    return logits.masked_fill(logits < logits.topk(k, -1).values[:, -1:], INF)


REFERENCE = {
    nb07.exercise_1: lambda x, w, b, eps=1e-5: F.layer_norm(x, x.shape[-1:], w, b, eps),
    nb07.exercise_2: lambda x, f, norm: x + f(norm(x)),
    nb07.exercise_3: dropout,
    nb07.exercise_4: top_k,
}


@pytest.mark.parametrize("exercise", list(REFERENCE), ids=lambda e: e.__name__)
def test_the_reference_answer_passes_and_the_unsolved_one_is_not_attempted(exercise):
    assert exercise(REFERENCE[exercise]).status == PASSED
    assert exercise(unsolved).status == NOT_ATTEMPTED


@pytest.mark.parametrize("exercise", list(REFERENCE), ids=lambda e: e.__name__)
@wrong_kinds
def test_an_answer_that_raises_or_returns_no_tensor_fails_with_a_message(exercise, answer):
    says = {raises_key_error: "KeyError", returns_none: "returned None", returns_text: "got str"}
    assert_fails_naming_it(exercise(answer), answer, says)  # no traceback escapes


def test_layer_norm_and_dropout_mistakes_are_named():
    post = nb07.exercise_2(lambda x, f, norm: norm(x + f(x)))
    assert post.status == FAILED and "post-norm" in post.detail
    unbiased = nb07.exercise_1(lambda x, w, b, eps=1e-5: (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True) * w + b)
    assert unbiased.status == FAILED and "unbiased" in unbiased.detail
    unscaled = nb07.exercise_3(lambda x, p, g: x * (torch.rand(x.shape, generator=g) >= p))
    assert unscaled.status == FAILED and "1 / (1 - p)" in unscaled.detail


def kth(logits, k, dim=-1):
    return logits.topk(k, dim).values.narrow(dim, k - 1, 1)


@pytest.mark.parametrize("mistake, hint", [
    (lambda l, k: l.masked_fill(l > -kth(-l, k), INF), "SMALLEST"),                       # kept the k smallest
    (lambda l, k: l.masked_fill(l > kth(l, k), INF), "comparison is reversed"),            # > instead of <
    (lambda l, k: l.masked_fill(l < kth(l, k + 1), INF), "kept the 3 largest of each row, expected k = 2"),
    (lambda l, k: l.masked_fill(l <= kth(l, k), INF), "kept the 1 largest of each row, expected k = 2"),
    (lambda l, k: l.masked_fill(l < kth(l, k, 0), INF), "COLUMN (dim=0"),                 # wrong dimension
    (lambda l, k: l.masked_fill(l < l.topk(k, -1).values[:, -1], INF), "keepdim=True"),   # (batch,) threshold
    (lambda l, k: l.masked_fill(l < l.flatten().topk(k).values[-1], INF), "whole batch"),
    (lambda l, k: l.masked_fill(l < kth(l, k), 0.0), "-inf, not 0"),
    (lambda l, k: torch.softmax(top_k(l, k), -1), "probabilities"),
    (lambda l, k: l.topk(k, -1).values, "the k values alone"),
    (lambda l, k: top_k(l, k).sort(-1, descending=True).values, "do not sort"),
], ids=["smallest", "reversed", "k+1", "k-1", "dim 0", "no keepdim", "global", "zero", "softmax", "values",
        "sorted"])
def test_top_k_mistakes_get_a_targeted_hint(mistake, hint):
    result = nb07.exercise_4(mistake)
    assert result.status == FAILED
    assert hint in result.detail
