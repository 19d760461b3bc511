"""Checkers for notebook 07 (normalization, skip connections, dropout, generation with top-k).

Each compares the learner's function with torch's own and names the likely mistake (for top-k: the
smallest kept, a reversed comparison, the wrong k, the wrong dimension, 0 instead of -inf, ...).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.exercises import Mismatch, Result, check, expect, expect_close, expect_equal, expect_type


def _expect_tensor(got, what: str) -> None:
    """A tensor, or a failed result that says what came back instead (None: a missing `return`)."""
    if got is None:
        raise Mismatch(f"{what} returned None: did you forget the `return`?")
    expect_type(got, torch.Tensor, what)


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def exercise_1(layer_norm: Callable[..., torch.Tensor]) -> Result:
    """layer_norm(x, weight, bias, eps=1e-5): normalize each vector (last dimension), then scale and shift."""

    def attempt():
        x = _rand(3, 5, 8, seed=0) * 4 + 2
        weight, bias = _rand(8, seed=1), _rand(8, seed=2)
        got = layer_norm(x, weight, bias)
        what = "layer_norm(x of shape (3, 5, 8), weight, bias)"
        _expect_tensor(got, what)
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
        _expect_tensor(got, what)
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
        _expect_tensor(got, what)
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


def _kept_mask(scores: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """True where `scores` is among the k largest along `dim`."""
    kth = scores.topk(k, dim=dim).values.narrow(dim, k - 1, 1)
    return scores >= kth


def exercise_4(top_k_filter: Callable[[torch.Tensor, int], torch.Tensor]) -> Result:
    """top_k_filter(logits, k): keep the k largest logits of each row, set the others to -inf."""

    def attempt():
        logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0, 0.0],
                               [0.5, -1.0, 2.0, 0.0, 9.0, 1.5],
                               [7.0, 6.0, -2.0, 8.0, 3.0, -3.0]])
        k, what = 2, "top_k_filter(logits of shape (3, 6), k=2)"
        try:
            got = top_k_filter(logits.clone(), k)
        except RuntimeError as error:
            if "size of tensor" in str(error) or "must match" in str(error):
                raise Mismatch(f"{what} raised a shape error: {str(error).splitlines()[0]}. The k-th largest "
                               "value of each row has shape (batch,); keep it as (batch, 1), with keepdim=True or "
                               "[:, -1:], so that it broadcasts against the (batch, vocab) logits.") from None
            raise
        if got is None:
            raise Mismatch(f"{what} returned None: did you forget the `return`? Return the filtered logits "
                           "(masked_fill returns a new tensor; masked_fill_ changes the one you give it).")
        expect_type(got, torch.Tensor, what)
        if tuple(got.shape) == (3, k):
            raise Mismatch(f"{what}: returned shape (3, 2), the k values alone. Return logits of the input's "
                           "shape (3, 6), every logit in its place (its position is the token id), the others "
                           "set to -inf.")
        expect_equal(tuple(got.shape), (3, 6), f"the shape of {what}")
        inf = float("-inf")
        keep = _kept_mask(logits, k, -1)
        expected = logits.masked_fill(~keep, inf)
        if torch.equal(got, expected):
            pass
        elif torch.allclose(got, torch.softmax(expected, -1), atol=1e-6):
            raise Mismatch(f"{what}: you returned probabilities (softmax of the filtered logits); return the "
                           "filtered logits themselves: sampling applies the temperature and the softmax after.")
        elif torch.equal(got, logits.masked_fill(~keep, 0.0)):
            raise Mismatch(f"{what}: set the others to -inf, not 0: a logit of 0 still gets probability "
                           "after softmax, -inf gets exactly none.")
        else:
            kept = got.isfinite()
            per_row = kept.sum(-1).tolist()
            if torch.equal(kept, _kept_mask(-logits, k, -1)) or torch.equal(kept, ~keep):
                raise Mismatch(f"{what}: you kept the SMALLEST logits of each row (the least likely tokens); "
                               "keep the k largest: torch.topk(logits, k, dim=-1) gives them, and the k-th of "
                               "them is the threshold (logits below it become -inf).")
            if torch.equal(kept, _kept_mask(logits, k, 0)):
                raise Mismatch(f"{what}: you took the top k of each COLUMN (dim=0, across the batch); each row "
                               "is one sequence's scores over the vocabulary, so take the top k along the last "
                               "dimension (dim=-1).")
            if torch.equal(kept, _kept_mask(logits.flatten(), k, 0).view_as(logits)):
                raise Mismatch(f"{what}: you kept the k largest of the whole batch; keep k in EACH row "
                               "(dim=-1), so every sequence keeps k tokens.")
            if len(set(per_row)) == 1 and per_row[0] != k and torch.equal(kept, _kept_mask(logits, per_row[0], -1)):
                raise Mismatch(f"{what}: you kept the {per_row[0]} largest of each row, expected k = {k}: check "
                               "the index of the threshold (the k-th largest is values[:, k - 1], or values[:, -1:] "
                               "of topk(logits, k)) and whether you compare with < or <=.")
            if torch.equal(got.sort(-1).values, expected.sort(-1).values):
                raise Mismatch(f"{what}: the right values, but not in their places: keep every logit where it "
                               "was (its position is the token id); do not sort the row.")
            if not kept.gather(-1, logits.argmax(-1, keepdim=True)).all():
                raise Mismatch(f"{what}: the largest logit of a row was set to -inf: the comparison is reversed. "
                               "Set to -inf the logits BELOW the k-th largest (logits < kth), keep the rest.")
            expect_equal(got.tolist(), expected.tolist(), what)
        big = _rand(4, 50, seed=6)
        got = top_k_filter(big.clone(), 7)
        _expect_tensor(got, "top_k_filter(logits of shape (4, 50), k=7)")
        probs = torch.softmax(got, -1)
        expect_equal(((probs > 0).sum(-1)).tolist(), [7, 7, 7, 7], "tokens left with a chance, per row, for k=7")
        expect_close(got.max(-1).values, big.max(-1).values, "the largest logit of each row (unchanged)")

    return check("4", attempt, "Only the k likeliest tokens keep a chance; sampling can no longer pick a "
                               "wildly unlikely token.")
