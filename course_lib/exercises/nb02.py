"""Checkers for notebook 02 (one hot, matrices, the dictionary as matrices, cosine similarity)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from course_lib import translation as tr
from course_lib.exercises import Mismatch, Result, check, expect_close, expect_equal, expect_type
from course_lib.exercises.nb01 import _call, _key_error_hint

_SMALL = {"le": "the", "chat": "cat", "est": "is", "sous": "under", "la": "the", "table": "table", "chien": "dog"}


def _shape_hint(error: BaseException) -> str:
    """What a matrix-product size error usually means in these exercises."""
    if isinstance(error, RuntimeError) and "cannot be multiplied" in str(error):
        return (" In `A @ B` the last size of A must equal the first size of B: an (n, d) by (m, d) product "
                "needs the second one transposed, `A @ B.T` -> (n, m). Print the shapes to see which.")
    return _key_error_hint(error)


def exercise_1(one_hot_by_hand: Callable[[list[str], "tr.Vocabulary"], torch.Tensor]) -> Result:
    """One row per token, a single 1.0 at the token's index (0 for unknown tokens)."""
    vocab = tr.Vocabulary(tr.tokenize("le chat est sous la table"))
    cases = [["le", "chat", "est", "sous", "la", "table"], ["chien"], ["table", "table"], []]

    def attempt():
        for tokens in cases:
            got = _call(f"one_hot_by_hand({tokens}, vocab)", one_hot_by_hand, list(tokens), vocab)
            expect_type(got, torch.Tensor, f"one_hot_by_hand({tokens})")
            expect_equal(tuple(got.shape), (len(tokens), len(vocab)), f"one_hot_by_hand({tokens}).shape")
            expect_close(got, tr.one_hot(tokens, vocab), f"one_hot_by_hand({tokens})")

    return check("1", attempt, "Each row has exactly one 1: the index of its token.")


def exercise_2(lookup_with_matrices: Callable[..., str]) -> Result:
    """Translate one French word with K, V and one-hot vectors only: no dict inside."""
    K, V, src, tgt = tr.dictionary_matrices(_SMALL)
    cases = {**_SMALL, "maison": "<unk>"}

    def attempt():
        for word, expected in cases.items():
            got = _call(f"lookup_with_matrices({word!r}, K, V, src_vocab, tgt_vocab)", lookup_with_matrices,
                        word, K, V, src, tgt, hint=_shape_hint)
            expect_type(got, str, f"lookup_with_matrices({word!r}, K, V, src_vocab, tgt_vocab)")
            expect_equal(got, expected, f"lookup_with_matrices({word!r}, K, V, src_vocab, tgt_vocab)")
        spy = {"le": "THE", "chat": "CAT"}
        K2, V2, s2, t2 = tr.dictionary_matrices(spy)
        if _call("lookup_with_matrices('chat', K, V, ...) for {'le': 'THE', 'chat': 'CAT'}", lookup_with_matrices,
                 "chat", K2, V2, s2, t2, hint=_shape_hint) != "CAT":
            raise Mismatch("with other matrices K, V the answer should change: use the K and V you are given.")

    return check("2", attempt, "one_hot(word) @ K.T finds the entry, @ V fetches its value: a dict made of matrices.")


def exercise_3(cosine_matrix: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Result:
    """The (n, m) matrix of cosine similarities between the rows of a (n, d) and of b (m, d)."""
    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(4, 8, generator=g), torch.randn(3, 8, generator=g)),
             (torch.eye(3), torch.eye(3) * 5.0),
             (torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0], [-2.0, 0.0]]))]

    def attempt():
        for a, b in cases:
            got = _call(f"cosine_matrix(a {tuple(a.shape)}, b {tuple(b.shape)})", cosine_matrix, a.clone(), b.clone(),
                        hint=_shape_hint)
            expect_type(got, torch.Tensor, "cosine_matrix(a, b)")
            expected = F.cosine_similarity(a[:, None, :], b[None, :, :], dim=-1)
            expect_close(got, expected, f"cosine_matrix(a {tuple(a.shape)}, b {tuple(b.shape)})", tol=1e-5)

    return check("3", attempt, "Dot products of unit vectors: the length of a vector no longer matters, only its direction.")
