"""Checkers for notebook 06 (multi-head attention, the feed-forward layer, stacked blocks, the causal mask).

Each compares the learner's answer with torch or with `course_lib.model` and names the likely mistake.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from course_lib.exercises import Mismatch, Result, call, check, expect_close, expect_equal, what_it_is


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _hint(error: BaseException) -> str:
    """What usually causes the errors learners meet in these exercises."""
    text = str(error)
    if isinstance(error, RuntimeError) and "view size is not compatible" in text:
        return (" `view` needs the numbers laid out in memory in that order; after a `transpose` they are not. "
                "Call `view` before transposing, or use `reshape`.")
    if isinstance(error, RuntimeError) and ("shape" in text and "invalid for input of size" in text):
        return (" The sizes you asked for do not multiply to the tensor's size: d_head is d_model // n_heads, "
                "and the shape is (batch, length, n_heads, d_head) before the transpose.")
    if isinstance(error, RuntimeError) and "cannot be multiplied" in text:
        return (" nn.Linear keeps its weight as (out_features, in_features): the product of the two layers is "
                "second.weight @ first.weight.")
    return " Run your function on that input to see why."


def _call(what: str, function: Callable, *args) -> Any:
    """`exercises.call` with the hints for this notebook's common errors."""
    return call(what, function, *args, hint=_hint)


def _as_count(value: Any, what: str) -> float:
    """A count given as an int, a float (numerically equal), a numpy number or a one-element tensor."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise Mismatch(f"{what}: expected one number, got a tensor of shape {tuple(value.shape)}.")
        value = value.item()
    if value is None or isinstance(value, (bool, str, bytes)) or not hasattr(value, "__float__"):
        raise Mismatch(f"{what}: expected a number (how many parameters), got {what_it_is(value)}.")
    number = float(value)
    if not math.isfinite(number):
        raise Mismatch(f"{what}: expected a number of parameters, got {number}.")
    return number


def _same_count(got: float, expected: int) -> bool:
    """Equal up to float rounding: 0.1 + 0.2 style errors pass, any real miscount (at least 1) does not."""
    return abs(got - expected) <= 1e-6 * max(1.0, abs(expected))


def exercise_1(split_heads: Callable[[torch.Tensor, int], torch.Tensor]) -> Result:
    """split_heads(x, n_heads): (batch, length, d_model) -> (batch, n_heads, length, d_head)."""

    def attempt():
        for (batch, length, d_model, n_heads), seed in (((1, 6, 8, 2), 0), ((3, 5, 12, 4), 1)):
            x = _rand(batch, length, d_model, seed=seed)
            what = f"split_heads(x of shape {tuple(x.shape)}, n_heads={n_heads})"
            got = _call(what, split_heads, x, n_heads)
            if not isinstance(got, torch.Tensor):
                raise Mismatch(f"{what}: expected a torch.Tensor, got {what_it_is(got)}.")
            d_head = d_model // n_heads
            expect_equal(tuple(got.shape), (batch, n_heads, length, d_head), f"the shape of {what}")
            expected = x.view(batch, length, n_heads, d_head).transpose(1, 2)
            if torch.equal(got, x.reshape(batch, n_heads, length, d_head)):
                raise Mismatch(f"{what}: the shape is right but the numbers are scrambled: reshaping straight to "
                               "(batch, heads, length, d_head) mixes positions. Split the last dimension first, "
                               "view(batch, length, heads, d_head), then swap the length and head axes.")
            if torch.allclose(got, expected.transpose(-2, -1).reshape(got.shape)):
                raise Mismatch(f"{what}: each head should hold a contiguous slice of d_head features.")
            expect_close(got, expected, what)
            expect_close(got[0, 1, 2], x[0, 2, d_head:2 * d_head], f"{what}[0, 1, 2] (head 1 of position 2)")

    return check("1", attempt, "Head h of position t is features h*d_head ... (h+1)*d_head of x[t].")


def exercise_2(causal_mask: Callable[[int], torch.Tensor]) -> Result:
    """causal_mask(n): boolean (n, n), True where query i may look at key j, i.e. j <= i."""

    def attempt():
        for n in (1, 4, 7):
            what = f"causal_mask({n})"
            got = _call(what, causal_mask, n)
            if not isinstance(got, torch.Tensor):
                raise Mismatch(f"{what}: expected a boolean torch.Tensor, got {what_it_is(got)}.")
            expect_equal(tuple(got.shape), (n, n), f"the shape of {what}")
            if got.dtype != torch.bool:
                raise Mismatch(f"{what}: expected a boolean tensor (True = may attend), got dtype {got.dtype}.")
            expected = torch.ones(n, n, dtype=torch.bool).tril()
            if n > 1 and torch.equal(got, expected.T):
                raise Mismatch(f"{what}: this lets each position see the future and hides the past. Rows are "
                               "queries, columns keys: keep the lower triangle (tril), not the upper one.")
            if n > 1 and torch.equal(got, torch.ones(n, n, dtype=torch.bool).tril(-1)):
                raise Mismatch(f"{what}: a position must be allowed to look at itself (the diagonal is True).")
            expect_equal(got.tolist(), expected.tolist(), what)

    return check("2", attempt, "Row i allows keys 0..i: the past and the present, never the future.")


def exercise_3(collapse: Callable[[nn.Linear, nn.Linear], tuple[torch.Tensor, torch.Tensor]]) -> Result:
    """collapse(first, second) -> (W, b) with x @ W.T + b == second(first(x)) for every x."""

    def attempt():
        torch.manual_seed(3)
        first, second = nn.Linear(5, 7), nn.Linear(7, 3)
        got = _call("collapse(nn.Linear(5, 7), nn.Linear(7, 3))", collapse, first, second)
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise Mismatch(f"collapse(first, second): expected a tuple (W, b), got {what_it_is(got)}.")
        W, b = (t.detach() if isinstance(t, torch.Tensor) else t for t in got)
        for name, value in (("W", W), ("b", b)):
            if not isinstance(value, torch.Tensor):
                raise Mismatch(f"{name}: expected a torch.Tensor, got {what_it_is(value)}.")
        if tuple(W.shape) == (5, 3):
            raise Mismatch("W has shape (5, 3): nn.Linear keeps weights as (out, in), so the combined W "
                           "should be (3, 5) = second.weight @ first.weight.")
        expect_equal(tuple(W.shape), (3, 5), "the shape of W (out_features of second, in_features of first)")
        expect_close(W, second.weight.detach() @ first.weight.detach(), "W", tol=1e-5)
        expected_b = second.weight.detach() @ first.bias.detach() + second.bias.detach()
        if torch.allclose(b, first.bias.detach()[:3] + second.bias.detach(), atol=1e-5) or \
                torch.allclose(b, second.bias.detach(), atol=1e-5):
            raise Mismatch("b: the first layer's bias also goes through the second layer's matrix: "
                           "b = second.weight @ first.bias + second.bias.")
        expect_close(b, expected_b, "b", tol=1e-5)
        x = torch.randn(4, 5)
        expect_close(x @ W.T + b, second(first(x)).detach(), "x @ W.T + b versus second(first(x))", tol=1e-5)

    return check("3", attempt, "Two linear layers are one linear layer: depth without a non-linearity buys nothing.")


def exercise_4(block_parameters: Callable[[int, int], int]) -> Result:
    """block_parameters(d_model, d_ff): how many numbers one `course_lib.model.Block` learns."""

    def attempt():
        from course_lib.model import Block

        for d_model, d_ff in ((8, 32), (64, 256), (48, 100)):
            expected = sum(p.numel() for p in Block(d_model, 4, d_ff=d_ff).parameters())
            what = f"block_parameters(d_model={d_model}, d_ff={d_ff})"
            got = _as_count(_call(what, block_parameters, d_model, d_ff), what)
            if _same_count(got, expected):
                continue  # an int, or a float such as 2400.0000000000005 from a formula with divisions
            attention = 4 * d_model * d_model + 4 * d_model
            ff = 2 * d_model * d_ff + d_ff + d_model
            if _same_count(got, attention + ff):
                raise Mismatch(f"{what}: you counted attention and feed-forward; the two LayerNorms learn "
                               f"a scale and a shift each ({4 * d_model} more numbers).")
            if _same_count(got, 4 * d_model * d_model + 2 * d_model * d_ff):
                raise Mismatch(f"{what}: you counted the weight matrices only; add the biases and the "
                               "LayerNorms' scales and shifts.")
            if _same_count(got, 3 * d_model * d_model + 3 * d_model + ff + 4 * d_model):
                raise Mismatch(f"{what}: attention has four d_model x d_model matrices: W_q, W_k, W_v and the "
                               "output projection W_o that mixes the heads.")
            if _same_count(got, attention + ff + 2 * d_model):
                raise Mismatch(f"{what}: each LayerNorm learns two vectors of d_model numbers (a scale and a "
                               "shift), and a block has two LayerNorms.")
            shown = int(got) if got.is_integer() else got
            raise Mismatch(f"{what}: expected {expected}, got {shown} ({'more' if got > expected else 'fewer'} "
                           "than the block has). Count each nn.Linear as in_features x out_features weights plus "
                           "out_features biases, and each LayerNorm as 2 x d_model.")

    return check("4", attempt, "Attention 4d² + 4d, feed-forward 2·d·d_ff + d_ff + d, norms 4d: "
                               "the feed-forward layer holds most of a block's parameters.")
