"""Checkers for notebook 03 (softmax, the matrix query, scaled dot-product attention, masks).

Each compares the learner's function with torch's own and, when they differ, names the likely cause.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from course_lib.exercises import (Mismatch, Result, call, check, expect, expect_close, expect_equal,
                                  expect_type)


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _hint(error: BaseException, args: tuple) -> str:
    """The likely cause of the errors learners meet most in these exercises."""
    text = str(error)
    batched = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor) and a.dim() > 2]
    if isinstance(error, TypeError) and ("tuple" in text or "return_types" in text):
        return (" `torch.max(x, dim=-1)` returns a pair (values, indices); for the values alone with the shape "
                "kept for broadcasting, use `x.amax(dim=-1, keepdim=True)`.")
    if isinstance(error, RuntimeError) and batched and ("must match" in text or "cannot be multiplied" in text):
        example = batched[1] if len(batched) > 1 else batched[0]
        return (f" The inputs have batch dimensions, and `.T` reverses ALL the dimensions: a {example} tensor "
                f"becomes {example[::-1]}. To transpose the keys, swap only the last two: `K.transpose(-2, -1)` "
                "(or `K.mT`).")
    if isinstance(error, RuntimeError) and "must match" in text:
        return (" A row's max or sum lost its last dimension: reduce with `keepdim=True` (for example "
                "`x.amax(dim=-1, keepdim=True)`) so that it broadcasts against every entry of its row.")
    return " Run your function on that input to see why."


def _call(what: str, function: Callable, *args, **kwargs):
    """`exercises.call` with the hints for the common errors (`K.T` on batched tensors, a lost `keepdim`)."""
    return call(what, function, *args, hint=lambda error: _hint(error, args), **kwargs)


def exercise_1(stable_softmax: Callable[..., torch.Tensor]) -> Result:
    """softmax(x / temperature) along the last dimension, without overflowing on large scores."""

    def attempt():
        small = torch.tensor([1.0, 2.0, 3.0])
        got = _call("stable_softmax(tensor([1., 2., 3.]))", stable_softmax, small)
        expect_type(got, torch.Tensor, "stable_softmax(tensor([1., 2., 3.]))")
        expect_close(got, torch.softmax(small, dim=-1), "stable_softmax(tensor([1., 2., 3.]))")
        rows = _rand(4, 6, seed=0)
        got = _call("stable_softmax(x of shape (4, 6))", stable_softmax, rows)
        expect_type(got, torch.Tensor, "stable_softmax(x of shape (4, 6))")
        expect_equal(tuple(got.shape), (4, 6), "the shape of stable_softmax of a (4, 6) tensor")
        if not torch.allclose(got.sum(-1), torch.ones(4), atol=1e-5):
            raise Mismatch("the rows of a (4, 6) tensor do not sum to 1: normalise along the last "
                           "dimension (dim=-1, keepdim=True), not over the whole tensor.")
        expect_close(got, torch.softmax(rows, dim=-1), "stable_softmax of a (4, 6) tensor")
        big = torch.tensor([1000.0, 1001.0, 1002.0])
        got = _call("stable_softmax(tensor([1000., 1001., 1002.]))", stable_softmax, big)
        expect_type(got, torch.Tensor, "stable_softmax(tensor([1000., 1001., 1002.]))")
        if not torch.isfinite(got).all():
            raise Mismatch("stable_softmax(tensor([1000., 1001., 1002.])) gave NaN or inf: exp(1000) overflows. "
                           "Subtract each row's max before exp; the answer does not change.")
        expect_close(got, torch.softmax(big, dim=-1), "stable_softmax(tensor([1000., 1001., 1002.]))")
        for temperature in (0.5, 4.0):
            got = _call(f"stable_softmax(x, temperature={temperature})", stable_softmax, rows, temperature=temperature)
            expect_type(got, torch.Tensor, f"stable_softmax(x, temperature={temperature})")
            expected = torch.softmax(rows / temperature, dim=-1)
            if torch.allclose(got, torch.softmax(rows * temperature, dim=-1), atol=1e-5):
                raise Mismatch(f"temperature={temperature}: you multiplied by the temperature; divide by it "
                               "(a high temperature should flatten the weights).")
            expect_close(got, expected, f"stable_softmax(x, temperature={temperature})")

    return check("1", attempt, "Stable for any scores, and the temperature sharpens or flattens the weights.")


def exercise_2(attention: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Result:
    """attention(Q, K, V) -> (softmax(Q Kᵀ / √d_k) V, weights), for any leading batch dimensions."""

    def attempt():
        for shapes, seed in ((((3, 4), (5, 4), (5, 2)), 1), (((2, 3, 8), (2, 6, 8), (2, 6, 3)), 2),
                             (((2, 4, 3, 8), (2, 4, 6, 8), (2, 4, 6, 3)), 3)):
            q, k, v = (_rand(*s, seed=seed + i) for i, s in enumerate(shapes))
            what = f"attention(Q {tuple(q.shape)}, K {tuple(k.shape)}, V {tuple(v.shape)})"
            result = _call(what, attention, q, k, v)
            expect(isinstance(result, tuple) and len(result) == 2, f"{what}: expected a tuple (output, weights), "
                   f"got {type(result).__name__}.")
            out, weights = result
            expect_type(weights, torch.Tensor, f"{what}, the weights")
            if tuple(weights.shape) != (*q.shape[:-1], k.shape[-2]) and q.dim() > 2:
                raise Mismatch(f"{what}: the weights should have shape {(*q.shape[:-1], k.shape[-2])} (one row per "
                               f"query, one column per key), got {tuple(weights.shape)}. With batch dimensions, "
                               "transpose only the last two dimensions of K: `K.transpose(-2, -1)`, not `K.T`.")
            expect_equal(tuple(weights.shape), (*q.shape[:-1], k.shape[-2]),
                         f"{what}: the shape of the weights (one row per query, one column per key)")
            if not torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-5):
                raise Mismatch(f"{what}: the weights of each query do not sum to 1: take the softmax over the keys "
                               "(the last dimension).")
            scores = q @ k.transpose(-2, -1)
            if torch.allclose(weights, torch.softmax(scores, dim=-1), atol=1e-5):
                raise Mismatch(f"{what}: these are softmax(Q Kᵀ) weights; divide the scores by √d_k = "
                               f"√{q.shape[-1]} first.")
            if torch.allclose(weights, torch.softmax(scores / q.shape[-1], dim=-1), atol=1e-5):
                raise Mismatch(f"{what}: you divided by d_k = {q.shape[-1]}; divide by its square root, "
                               f"√d_k = {math.sqrt(q.shape[-1]):.3g}.")
            expect_close(weights, torch.softmax(scores / math.sqrt(q.shape[-1]), dim=-1), f"{what}, the weights")
            expect_type(out, torch.Tensor, f"{what}, the output")
            expect_close(out, F.scaled_dot_product_attention(q, k, v), f"{what}, the output (weights @ V)")

    return check("2", attempt, "Your attention matches torch.nn.functional.scaled_dot_product_attention.")


def exercise_3(padding_mask: Callable[[list[int], int], torch.Tensor]) -> Result:
    """padding_mask(lengths, max_len): a bool (batch, max_len) tensor, True where a real token is."""

    def attempt():
        lengths, max_len = [3, 5, 1], 5
        what = f"padding_mask({lengths}, {max_len})"
        got = _call(what, padding_mask, list(lengths), max_len)
        expect_type(got, torch.Tensor, what)
        expect_equal(got.dtype, torch.bool, f"{what}: the dtype (True = a real token that may be attended to)")
        expect_equal(tuple(got.shape), (3, 5), f"{what}: the shape (batch, max_len)")
        expected = torch.arange(max_len)[None, :] < torch.tensor(lengths)[:, None]
        if torch.equal(got, ~expected):
            raise Mismatch(f"{what}: True and False are swapped; here True means 'a real token, attend to it', "
                           "as in torch.nn.functional.scaled_dot_product_attention.")
        expect_equal(got.tolist(), expected.tolist(), what)
        q, k, v = _rand(3, 5, 4, seed=5), _rand(3, 5, 4, seed=6), _rand(3, 5, 2, seed=7)
        with_mask = F.scaled_dot_product_attention(q, k, v, attn_mask=got[:, None, :])
        alone = F.scaled_dot_product_attention(q[0], k[0, :3], v[0, :3])  # sentence 0 without its padding
        expect_close(with_mask[0], alone, "sentence 0 (3 real tokens) attended with your mask vs. without its padding")

    return check("3", attempt, "Padding is now invisible: the sentence attends as if it were never padded.")
