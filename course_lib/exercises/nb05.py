"""Checkers for notebook 05's exercises: BPE's two steps (count pairs, merge a pair), embeddings, positions."""

from __future__ import annotations

from collections import Counter
from typing import Callable

from course_lib.exercises import Mismatch, Result, check, expect, expect_close, expect_equal

PAIR_CASES = [[1, 2, 3, 1, 2], [5, 5, 5, 5], [7], [], [104, 105, 32, 104, 105]]
MERGE_CASES = [([1, 2, 3, 1, 2], (1, 2), 9, [9, 3, 9]),
               ([1, 1, 1], (1, 1), 9, [9, 1]),
               ([1, 1, 1, 1], (1, 1), 9, [9, 9]),
               ([3, 1, 2, 1], (2, 1), 7, [3, 1, 7]),
               ([4, 5], (5, 4), 8, [4, 5]),
               ([], (1, 2), 3, [])]


def exercise_1(count_pairs: Callable) -> Result:
    """count_pairs(ids) -> {(a, b): how many times b follows a}."""

    def attempt():
        for ids in PAIR_CASES:
            got = count_pairs(list(ids))
            if not hasattr(got, "items"):
                raise Mismatch(f"count_pairs({ids}): expected a dict {{(a, b): count}}, got {type(got).__name__}.")
            expected = Counter(zip(ids, ids[1:]))
            got = {tuple(k): v for k, v in got.items() if v}
            expect_equal(got, dict(expected), f"count_pairs({ids})")

    return check("1 (count adjacent pairs)", attempt,
                 "This count is the inner loop of BPE training: it runs once per merge in the plain trainer.")


def exercise_2(merge: Callable) -> Result:
    """merge(ids, pair, new_id) -> ids with every occurrence of pair, left to right, replaced by new_id."""

    def attempt():
        for ids, pair, new_id, expected in MERGE_CASES:
            original = list(ids)
            got = merge(original, pair, new_id)
            expect(original == ids, f"merge({ids}, {pair}, {new_id}) changed its input list; build a new one.")
            if got != expected and len(ids) >= 3 and ids[0] == ids[1] == ids[2]:
                raise Mismatch(f"merge({ids}, {pair}, {new_id}): expected {expected}, got {got}. "
                               "Overlapping pairs: once two ids are merged, the second cannot start another pair; "
                               "skip past both.")
            expect_equal(list(got), expected, f"merge({ids}, {pair}, {new_id})")

    return check("2 (merge a pair)", attempt, "With count_pairs, that is a whole BPE trainer: count, pick the top pair, merge, repeat.")


def exercise_3(embed: Callable) -> Result:
    """embed(ids, weight) -> one_hot(ids) @ weight, the same as torch.nn.Embedding with that weight."""
    import torch

    def attempt():
        generator = torch.Generator().manual_seed(5)
        weight = torch.randn(11, 4, generator=generator)
        for ids in (torch.tensor([0, 3, 10]), torch.tensor([[1, 1], [2, 9]])):
            got = embed(ids, weight)
            expect(isinstance(got, torch.Tensor), f"embed: expected a torch.Tensor, got {type(got).__name__}.")
            expected = torch.nn.functional.embedding(ids, weight)
            expect_equal(tuple(got.shape), tuple(expected.shape), f"embed(ids of shape {tuple(ids.shape)}) shape")
            expect_close(got, expected, f"embed({ids.tolist()})")

    return check("3 (one-hot embedding)", attempt,
                 "nn.Embedding computes the same thing by reading rows, without building the one-hot matrix.")


def exercise_4(positions: Callable) -> Result:
    """positions(n_positions, d_model) -> the sinusoidal table of "Attention Is All You Need"."""
    import torch

    from course_lib.embeddings import sinusoidal_positions

    def attempt():
        for n, d in ((4, 2), (10, 8), (50, 16)):
            got = positions(n, d)
            expect(isinstance(got, torch.Tensor), f"positions: expected a torch.Tensor, got {type(got).__name__}.")
            expected = sinusoidal_positions(n, d)
            expect_equal(tuple(got.shape), (n, d), f"positions({n}, {d}) shape")
            if torch.allclose(got[:, 0::2], expected[:, 1::2], atol=1e-4):
                raise Mismatch("sin and cos are swapped: even columns (0, 2, ...) hold sin, odd columns cos.")
            expect_close(got, expected, f"positions({n}, {d})", tol=1e-4)

    return check("4 (sinusoidal positions)", attempt,
                 "Fixed, parameter-free, and defined for any position: the original transformer's choice.")
