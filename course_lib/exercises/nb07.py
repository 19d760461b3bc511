"""Checkers for notebook 07 (normalization, skip connections, dropout, generation with top-k).

Each compares the learner's function with torch's own and names the likely mistake.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.exercises import Mismatch, Result, check, expect, expect_close, expect_equal, expect_type


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def exercise_1(layer_norm: Callable[..., torch.Tensor]) -> Result:
    """layer_norm(x, weight, bias, eps=1e-5): normalize each vector (last dimension), then scale and shift."""

    def attempt():
        x = _rand(3, 5, 8, seed=0) * 4 + 2
        weight, bias = _rand(8, seed=1), _rand(8, seed=2)
        got = layer_norm(x, weight, bias)
        what = "layer_norm(x of shape (3, 5, 8), weight, bias)"
        expect_type(got, torch.Tensor, what)
        expect_equal(tuple(got.shape), (3, 5, 8), f"the shape of {what}")
        expected = F.layer_norm(x, (8,), weight, bias, eps=1e-5)
        centred = x - x.mean(-1, keepdim=True)
        if torch.allclose(got, centred / x.std(-1, keepdim=True) * weight + bias, atol=1e-4):
            raise Mismatch(f"{what}: you divided by the unbiased standard deviation (x.std()); LayerNorm uses "
                           "the plain variance, mean((x - mean)²), plus eps, under the square root.")
        over_all = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-5) * weight + bias
        if torch.allclose(got, over_all, atol=1e-4):
            raise Mismatch(f"{what}: you normalized over the whole tensor; LayerNorm normalizes each vector on "
                           "its own: mean and variance over the last dimension (dim=-1, keepdim=True).")
        plain = centred / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
        if torch.allclose(got, plain, atol=1e-4):
            raise Mismatch(f"{what}: normalized correctly, but then multiply by `weight` and add `bias`, the "
                           "scale and shift that the layer learns.")
        expect_close(got, expected, what, tol=1e-4)

    return check("1", attempt, "Each vector gets mean 0 and variance 1, then the learned scale and shift.")


def exercise_2(pre_norm_sublayer: Callable[..., torch.Tensor]) -> Result:
    """pre_norm_sublayer(x, f, norm): GPT-2's wrapping of a sub-layer f, x + f(norm(x))."""

    def attempt():
        torch.manual_seed(3)
        norm, f = nn.LayerNorm(8), nn.Linear(8, 8)
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
        x = _rand(2, 4, 8, seed=4) * 3
        got = pre_norm_sublayer(x, f, norm)
        what = "pre_norm_sublayer(x, f, norm)"
        expect_type(got, torch.Tensor, what)
        got = got.detach()
        with torch.no_grad():
            if torch.allclose(got, norm(x + f(x)), atol=1e-5):
                raise Mismatch(f"{what}: that is post-norm, norm(x + f(x)), the 2017 paper's order. Pre-norm "
                               "normalizes the input of f and adds the raw x back: x + f(norm(x)).")
            if torch.allclose(got, f(norm(x)), atol=1e-5):
                raise Mismatch(f"{what}: the skip connection is missing: add x back to f(norm(x)).")
            if torch.allclose(got, norm(x) + f(norm(x)), atol=1e-5):
                raise Mismatch(f"{what}: add the raw x, not norm(x): the skip path must stay untouched, so the "
                               "gradient reaches the lower blocks unchanged.")
            expect_close(got, x + f(norm(x)), what)

    return check("2", attempt, "x + f(norm(x)): the skip path carries x untouched past every block.")


def exercise_3(dropout: Callable[..., torch.Tensor]) -> Result:
    """dropout(x, p, generator): zero each value with probability p, scale the survivors by 1 / (1 - p)."""

    def attempt():
        x = torch.ones(200_000)
        got = dropout(x, 0.25, torch.Generator().manual_seed(0))
        what = "dropout(ones(200000), p=0.25)"
        expect_type(got, torch.Tensor, what)
        expect_equal(tuple(got.shape), (200_000,), f"the shape of {what}")
        zeros = (got == 0).float().mean().item()
        if abs(zeros - 0.75) < 0.01:
            raise Mismatch(f"{what}: {zeros:.0%} of the values are zero; p is the probability to DROP a value, "
                           "so about 25% should be zero.")
        expect(abs(zeros - 0.25) < 0.01, f"{what}: expected about 25% zeros, got {zeros:.1%}.")
        kept = got[got != 0]
        if torch.allclose(kept, torch.ones_like(kept)):
            raise Mismatch(f"{what}: the kept values are still 1. Scale them by 1 / (1 - p) = 1.333 so that the "
                           "expected value stays the same and nothing needs changing in eval mode.")
        expect_close(kept[:5], torch.full((5,), 1 / 0.75), f"the kept values of {what}", tol=1e-5)
        again = dropout(x, 0.25, torch.Generator().manual_seed(0))
        expect(torch.equal(got, again), "the same generator seed should drop the same values: draw the random "
                                        "numbers with torch.rand(..., generator=generator).")
        y = _rand(3, 4, seed=5)
        expect_close(dropout(y, 0.0, torch.Generator().manual_seed(1)), y, "dropout(y, p=0.0)")

    return check("3", attempt, "Inverted dropout: drop with probability p, scale the rest by 1/(1-p); "
                               "in eval mode it is simply switched off.")


def exercise_4(top_k_filter: Callable[[torch.Tensor, int], torch.Tensor]) -> Result:
    """top_k_filter(logits, k): keep the k largest logits of each row, set the others to -inf."""

    def attempt():
        logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0], [0.5, -1.0, 2.0, 0.0, 9.0]])
        got = top_k_filter(logits.clone(), 2)
        what = "top_k_filter(logits, k=2)"
        expect_type(got, torch.Tensor, what)
        expect_equal(tuple(got.shape), (2, 5), f"the shape of {what}")
        inf = float("-inf")
        expected = torch.tensor([[inf, 5.0, inf, 4.0, inf], [inf, inf, 2.0, inf, 9.0]])
        if torch.equal(got, torch.tensor([[inf, inf, inf, 4.0, inf], [inf, inf, 2.0, inf, inf]])) or \
                torch.equal(got.isinf(), ~expected.isinf()):
            raise Mismatch(f"{what}: you kept the wrong ones; keep the k LARGEST values of each row.")
        if torch.equal(got, torch.tensor([[0.0, 5.0, 0.0, 4.0, 0.0], [0.0, 0.0, 2.0, 0.0, 9.0]])):
            raise Mismatch(f"{what}: set the others to -inf, not 0: a logit of 0 still gets probability "
                           "after softmax, -inf gets exactly none.")
        expect_equal(got.tolist(), expected.tolist(), what)
        big = _rand(4, 50, seed=6)
        got = top_k_filter(big.clone(), 7)
        probs = torch.softmax(got, -1)
        expect_equal(((probs > 0).sum(-1)).tolist(), [7, 7, 7, 7], "tokens left with a chance, per row, for k=7")
        expect_close(got.max(-1).values, big.max(-1).values, "the largest logit of each row (unchanged)")

    return check("4", attempt, "Only the k likeliest tokens keep a chance; sampling can no longer pick a "
                               "wildly unlikely token.")
