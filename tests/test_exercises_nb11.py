"""Notebook 11's checkers pass right answers, explain wrong ones, and wait for unattempted ones."""

import torch

from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, nb11


def not_yet(*args):
    raise NotImplementedError


def test_kv_cache_checker():
    right = lambda L, h, d, s, b, n: 2 * L * h * d * s * b * n  # noqa: E731
    assert nb11.exercise_1(right).status == PASSED
    half = nb11.exercise_1(lambda L, h, d, s, b, n: L * h * d * s * b * n)
    assert half.status == FAILED and "a key AND a value" in half.detail
    assert nb11.exercise_1(not_yet).status == NOT_ATTEMPTED


def test_absmax_checker():
    def right(x):
        scale = x.abs().max() / 127
        return (x / scale).round().to(torch.int8), scale

    assert nb11.exercise_2(right).status == PASSED
    wrong_dtype = nb11.exercise_2(lambda x: (torch.round(x / (x.abs().max() / 127)), x.abs().max() / 127))
    assert wrong_dtype.status == FAILED and "dtype" in wrong_dtype.detail
    wrong_scale = nb11.exercise_2(lambda x: ((x / (x.abs().max() / 255)).round().clamp(-128, 127).to(torch.int8),
                                             x.abs().max() / 255))
    assert wrong_scale.status == FAILED and "scale" in wrong_scale.detail


def test_pack_checker():
    right = lambda c: c[..., 0::2] | (c[..., 1::2] << 4)  # noqa: E731
    assert nb11.exercise_3(right).status == PASSED
    swapped = nb11.exercise_3(lambda c: (c[..., 0::2] << 4) | c[..., 1::2])
    assert swapped.status == FAILED and "swapped" in swapped.detail
    assert nb11.exercise_3(not_yet).status == NOT_ATTEMPTED


def test_all_reduce_checker():
    assert nb11.exercise_4(lambda p, n, b: 2 * (n - 1) / n * p * b).status == PASSED
    half = nb11.exercise_4(lambda p, n, b: (n - 1) / n * p * b)
    assert half.status == FAILED and "reduce-scatter" in half.detail
