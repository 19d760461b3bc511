"""The checkers of notebooks 06 and 07 pass the right answers and explain the usual wrong ones."""

import torch
import torch.nn.functional as F

from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, nb06, nb07


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


def test_nb07_right_answers_pass():
    def dropout(x, p, generator):
        return x * (torch.rand(x.shape, generator=generator) >= p) / (1 - p)

    def top_k(logits, k):
        return logits.masked_fill(logits < logits.topk(k, -1).values[:, -1:], float("-inf"))

    assert nb07.exercise_1(lambda x, w, b, eps=1e-5: F.layer_norm(x, x.shape[-1:], w, b, eps)).status == PASSED
    assert nb07.exercise_2(lambda x, f, norm: x + f(norm(x))).status == PASSED
    assert nb07.exercise_3(dropout).status == PASSED
    assert nb07.exercise_4(top_k).status == PASSED


def test_nb07_usual_mistakes_are_named():
    post = nb07.exercise_2(lambda x, f, norm: norm(x + f(x)))
    assert post.status == FAILED and "post-norm" in post.detail
    unscaled = nb07.exercise_3(lambda x, p, g: x * (torch.rand(x.shape, generator=g) >= p))
    assert unscaled.status == FAILED and "1 / (1 - p)" in unscaled.detail
    zero = nb07.exercise_4(lambda l, k: l.masked_fill(l < l.topk(k, -1).values[:, -1:], 0.0))
    assert zero.status == FAILED and "-inf" in zero.detail
    assert nb07.exercise_3(unsolved).status == NOT_ATTEMPTED
