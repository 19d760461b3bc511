"""Checkers for notebook 05's exercises: BPE's two steps (count pairs, merge a pair), embeddings, positions."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from course_lib.exercises import Mismatch, Result, call, check, expect, expect_close, expect_equal, what_it_is

PAIR_CASES = [[1, 2, 3, 1, 2], [5, 5, 5, 5], [7], [], [104, 105, 32, 104, 105]]
MERGE_CASES = [([1, 2, 3, 1, 2], (1, 2), 9, [9, 3, 9]),
               ([1, 1, 1], (1, 1), 9, [9, 1]),
               ([1, 1, 1, 1], (1, 1), 9, [9, 9]),
               ([3, 1, 2, 1], (2, 1), 7, [3, 1, 7]),
               ([4, 5], (5, 4), 8, [4, 5]),
               ([], (1, 2), 3, [])]


def _hint(error: BaseException, what: str) -> str:
    """What usually causes the errors learners meet in these exercises (`what` names the call)."""
    text = str(error)
    if isinstance(error, IndexError) and what.startswith(("count_pairs", "merge")):
        return (" A loop over `ids[i + 1]` must stop one element early: `range(len(ids) - 1)`, "
                "or pair the list with itself shifted, `zip(ids, ids[1:])`.")
    if isinstance(error, RuntimeError) and ("dtype" in text or "scalar type" in text or "not implemented for 'Long'" in text):
        return (" `one_hot` gives integers (torch.long) and `weight` holds floats: convert with `.float()` "
                "before the product.")
    if isinstance(error, RuntimeError) and "cannot be multiplied" in text:
        return (" `one_hot(ids)` guesses the number of classes from the largest id in `ids`; pass "
                "`num_classes=weight.shape[0]` so each one-hot vector has one entry per row of `weight`.")
    return " Run your function on that input to see why."


def _call(what: str, function: Callable, *args) -> Any:
    """`exercises.call` with the hints for this notebook's common errors."""
    return call(what, function, *args, hint=lambda error: _hint(error, what))


def exercise_1(count_pairs: Callable) -> Result:
    """count_pairs(ids) -> {(a, b): how many times b follows a}."""

    def attempt():
        for ids in PAIR_CASES:
            got = _call(f"count_pairs({ids})", count_pairs, list(ids))
            if not hasattr(got, "items"):
                raise Mismatch(f"count_pairs({ids}): expected a dict {{(a, b): count}}, got {what_it_is(got)}.")
            bad_keys = [k for k in got if not (isinstance(k, tuple) and len(k) == 2)]
            if bad_keys:
                raise Mismatch(f"count_pairs({ids}): each key should be a pair (a, b) of neighbouring ids, "
                               f"got the key {bad_keys[0]!r}.")
            expected = Counter(zip(ids, ids[1:]))
            got = {k: v for k, v in got.items() if v}
            expect_equal(got, dict(expected), f"count_pairs({ids})")

    return check("1 (count adjacent pairs)", attempt,
                 "This count is the inner loop of BPE training: it runs once per merge in the plain trainer.")


def exercise_2(merge: Callable) -> Result:
    """merge(ids, pair, new_id) -> ids with every occurrence of pair, left to right, replaced by new_id."""

    def attempt():
        for ids, pair, new_id, expected in MERGE_CASES:
            original = list(ids)
            got = _call(f"merge({ids}, {pair}, {new_id})", merge, original, pair, new_id)
            expect(original == ids, f"merge({ids}, {pair}, {new_id}) changed its input list; build a new one.")
            if not isinstance(got, (list, tuple)):
                raise Mismatch(f"merge({ids}, {pair}, {new_id}): expected a list of ids, got {what_it_is(got)}.")
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
            got = _call(f"embed(ids={ids.tolist()}, weight of shape (11, 4))", embed, ids, weight)
            expect(isinstance(got, torch.Tensor), f"embed: expected a torch.Tensor, got {what_it_is(got)}.")
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
            got = _call(f"positions({n}, {d})", positions, n, d)
            expect(isinstance(got, torch.Tensor), f"positions: expected a torch.Tensor, got {what_it_is(got)}.")
            expected = sinusoidal_positions(n, d)
            expect_equal(tuple(got.shape), (n, d), f"positions({n}, {d}) shape")
            got = got.detach().double()
            if torch.allclose(got[:, 0::2], expected[:, 1::2].double(), atol=1e-4):
                raise Mismatch("sin and cos are swapped: even columns (0, 2, ...) hold sin, odd columns cos.")
            p = torch.arange(n, dtype=torch.float64)[:, None]
            per_column = p / 10000 ** (torch.arange(d, dtype=torch.float64) / d)  # angle from the column, not the pair
            if torch.allclose(got[:, 1::2], per_column[:, 1::2].cos(), atol=1e-4):
                raise Mismatch(f"positions({n}, {d}): columns 2i and 2i + 1 are a pair and share one angle, "
                               "p / 10000 ** (2 * i / d_model); the cosine column used its own column number.")
            expect_close(got, expected, f"positions({n}, {d})", tol=1e-4)

    return check("4 (sinusoidal positions)", attempt,
                 "Fixed, parameter-free, and defined for any position: the original transformer's choice.")
