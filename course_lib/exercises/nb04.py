"""Checkers for notebook 04 (the attention head: weight matrices, connecting matrices).

Each compares the learner's answer with `course_lib.attention.AttentionHead` or torch's own
`nn.MultiheadAttention` and, when they differ, names the likely cause.
"""

from __future__ import annotations

import math
import random
from typing import Callable

import torch
from torch import nn

from course_lib.attention import AttentionHead, scaled_dot_product_attention
from course_lib.exercises import Mismatch, Result, check, expect, expect_close, expect_equal, expect_type
from course_lib.exercises.nb03 import _call

# French -> English pairs with distinct words on both sides (all in data/fr_en_glossary.tsv).
PAIRS = [("chat", "cat"), ("chien", "dog"), ("table", "table"), ("sous", "under"), ("maison", "house"),
         ("pomme", "apple"), ("rouge", "red"), ("mange", "eats")]


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _head_with(W_q: torch.Tensor, W_k: torch.Tensor, W_v: torch.Tensor) -> AttentionHead:
    """An AttentionHead whose projections are x @ W (nn.Linear stores W transposed: (d_head, d_model))."""
    head = AttentionHead(W_q.shape[0], W_q.shape[1])
    with torch.no_grad():
        for linear, W in ((head.q_proj, W_q), (head.k_proj, W_k), (head.v_proj, W_v)):
            linear.weight.copy_(W.T)
    return head


def exercise_1(head_by_hand: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> Result:
    """head_by_hand(x, context, W_q, W_k, W_v) -> (output, weights), with W_* of shape (d_model, d_head)."""

    def attempt():
        d_model, d_head = 8, 4
        x, context = _rand(2, 5, d_model, seed=0), _rand(2, 7, d_model, seed=1)
        W_q, W_k, W_v = (_rand(d_model, d_head, seed=s) for s in (2, 3, 4))
        what = "head_by_hand(x (2, 5, 8), context (2, 7, 8), W_q, W_k, W_v (8, 4))"
        result = _call(what, head_by_hand, x, context, W_q, W_k, W_v)
        expect(isinstance(result, tuple) and len(result) == 2, f"{what}: expected a tuple (output, weights), "
               f"got {type(result).__name__}.")
        out, weights = result
        expect_type(weights, torch.Tensor, f"{what}, the weights")
        expect_equal(tuple(weights.shape), (2, 5, 7), f"{what}: the shape of the weights (batch, 5 queries "
                     "from x, 7 keys from context)")
        Q, K = x @ W_q, context @ W_k
        if torch.allclose(weights, torch.softmax(Q @ K.transpose(-2, -1), dim=-1), atol=1e-5):
            raise Mismatch(f"{what}: the scores were not scaled; divide Q Kᵀ by √d_head = √{d_head}.")
        expected_out, expected_weights = _head_with(W_q, W_k, W_v)(x, context)
        expect_close(weights, expected_weights, f"{what}, the weights")
        expect_type(out, torch.Tensor, f"{what}, the output")
        expect_equal(tuple(out.shape), (2, 5, d_head), f"{what}: the shape of the output (weights @ V)")
        expect_close(out, expected_out, f"{what}, the output")

    return check("1", attempt, "Three matrix products, a softmax and one more product: that is a whole head.")


def exercise_2(head_parameters: Callable[[int, int, bool], int]) -> Result:
    """head_parameters(d_model, d_head, bias) -> how many numbers an AttentionHead learns."""

    def attempt():
        for d_model, d_head, bias in ((8, 4, False), (927, 16, False), (512, 64, True), (3, 7, True)):
            expected = sum(p.numel() for p in AttentionHead(d_model, d_head, bias=bias).parameters())
            what = f"head_parameters(d_model={d_model}, d_head={d_head}, bias={bias})"
            got = _call(what, head_parameters, d_model, d_head, bias)
            if isinstance(got, (bool, str)) or not isinstance(got, (int, float, torch.Tensor)) or (
                    isinstance(got, torch.Tensor) and got.numel() != 1):
                raise Mismatch(f"{what}: expected a number (how many parameters), got {type(got).__name__} {got!r}.")
            got = got.item() if isinstance(got, torch.Tensor) else got
            if got == expected // 3:
                raise Mismatch(f"{what}: {got} is one matrix; a head has three (W_q, W_k and W_v).")
            if bias and got == expected - 3 * d_head:
                raise Mismatch(f"{what}: with bias=True each projection also learns d_head={d_head} biases.")
            expect_equal(got, expected, what)

    return check("2", attempt, "3 × d_model × d_head weights (+ 3 × d_head biases): small, and all learned.")


def exercise_3(connecting_matrices: Callable) -> Result:
    """connecting_matrices(pairs, vocab) -> (W_q, W_k), each (len(vocab), d_head), so that each English word's
    query finds its French word's key with a weight of at least 0.9."""
    from course_lib import translation as tr

    def attempt():
        vocab = tr.Vocabulary([f for f, _ in PAIRS] + [e for _, e in PAIRS])
        result = _call("connecting_matrices(pairs, vocab)", connecting_matrices, list(PAIRS), vocab)
        expect(isinstance(result, tuple) and len(result) == 2, f"connecting_matrices: expected a tuple (W_q, W_k), "
               f"got {type(result).__name__}.")
        W_q, W_k = result
        for name, W in (("W_q", W_q), ("W_k", W_k)):
            expect_type(W, torch.Tensor, name)
            expect(W.dim() == 2 and W.shape[0] == len(vocab), f"{name}: expected shape (len(vocab)={len(vocab)}, "
                   f"d_head), one row per vocabulary token, got {tuple(W.shape)}.")
        expect(W_q.shape == W_k.shape, f"W_q, W_k: expected the same shape (queries and keys are compared), "
               f"got {tuple(W_q.shape)} and {tuple(W_k.shape)}.")
        rng = random.Random(0)
        for trial in range(20):
            chosen = rng.sample(PAIRS, 5)
            french = [f for f, _ in chosen]
            rng.shuffle(chosen)
            english = [e for _, e in chosen]
            X, C = tr.one_hot(english, vocab).to(W_q.dtype), tr.one_hot(french, vocab).to(W_q.dtype)
            _, weights = scaled_dot_product_attention(X @ W_q, C @ W_k, C)
            for row, (f, e) in enumerate(chosen):
                right = french.index(f)
                looked = french[int(weights[row].argmax())]
                if looked != f:
                    raise Mismatch(f"English {english} against French {french}: '{e}' looks most at '{looked}', "
                                   f"not at '{f}'.")
                if weights[row, right] < 0.9:
                    raise Mismatch(f"'{e}' looks most at '{f}', but with weight {float(weights[row, right]):.2f} "
                                   "(< 0.9): make the matching entries larger; remember the scores are divided "
                                   f"by √d_head = {math.sqrt(W_q.shape[1]):.3g}.")

    return check("3", attempt, "You wrote notebook 02's dictionary as the two connecting matrices W_q and W_k.")


def exercise_4(to_torch: Callable[[AttentionHead], nn.MultiheadAttention]) -> Result:
    """to_torch(head) -> an nn.MultiheadAttention with one head that computes exactly what `head` computes."""

    def attempt():
        torch.manual_seed(0)
        head = AttentionHead(6, 6)
        mha = _call("to_torch(AttentionHead(6, 6))", to_torch, head)
        expect_type(mha, nn.MultiheadAttention, "to_torch(head)")
        expect_equal(mha.num_heads, 1, "to_torch(head).num_heads")
        x = _rand(2, 5, 6, seed=9)
        expected_out, expected_weights = head(x)
        expect(mha.batch_first, "to_torch(head): create the nn.MultiheadAttention with batch_first=True, since "
               "our tensors are (batch, length, features).")
        try:
            out, weights = mha(x, x, x)
        except RuntimeError as error:
            raise Mismatch(f"calling the nn.MultiheadAttention failed: {error}") from None
        if not torch.allclose(weights, expected_weights, atol=1e-5):
            raise Mismatch("the attention weights differ: copy W_q, W_k, W_v into in_proj_weight, stacked in that "
                           "order (rows 0-5: W_q, 6-11: W_k, 12-17: W_v), and zero in_proj_bias if it has one.")
        if not torch.allclose(out, expected_out, atol=1e-5):
            raise Mismatch("the weights match but the outputs differ: nn.MultiheadAttention ends with out_proj; "
                           "make it the identity (weight = eye, bias = 0), since one head has no output mixing.")
        expect_close(out, expected_out, "the output")

    return check("4", attempt, "One AttentionHead is nn.MultiheadAttention with one head and no output mixing.")
