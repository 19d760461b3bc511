"""Checkers for notebook 11 (memory arithmetic, quantization, int4 packing, communication per step)."""

from __future__ import annotations

import numbers
from typing import Any, Callable

import torch

from course_lib import distributed, quantization, scaling
from course_lib.exercises import Mismatch, Result, call, check, expect, expect_close, expect_equal, what_it_is


def _hint(error: BaseException) -> str:
    """What usually causes the errors learners meet in these exercises."""
    text = str(error)
    if isinstance(error, TypeError) and "unsupported operand" in text:
        return " One of the values is not a number: use the arguments as given (ints and floats)."
    if isinstance(error, RuntimeError) and ("Byte" in text or "dtype" in text or "shift" in text
                                            or "not implemented for" in text):
        return (" Shifts and | need integer tensors of one dtype: turn the codes into torch.uint8 "
                "(`codes.to(torch.uint8)`) before shifting.")
    if isinstance(error, ZeroDivisionError):
        return " A zero in the denominator: every input here has a nonzero largest |x| and world >= 1."
    return " Run your function on that input to see why."


def _call(what: str, function: Callable, *args) -> Any:
    """`exercises.call` with the hints for this notebook's common errors."""
    return call(what, function, *args, hint=_hint)


def _number(got: Any, what: str, expected: str = "a number of bytes (an int or a float)") -> float:
    """`got` as a float (an int, a float, a numpy number or a one-element tensor), or a Mismatch naming it."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        raise Mismatch(f"{what}: expected {expected}, got {what_it_is(got)}.")
    return float(got)


def exercise_1(kv_cache_bytes: Callable[..., float]) -> Result:
    """Bytes of the KV cache for (n_layers, n_kv_heads, d_head, seq_len, batch, bytes_per_value)."""
    cases = [  # Llama-2-7B at 4096 tokens in bf16, SmolLM2 (3 KV heads) in fp32, a tiny one
        (32, 32, 128, 4096, 1, 2), (30, 3, 64, 326, 1, 4), (2, 1, 8, 5, 3, 2), (32, 32, 128, 4096, 8, 2)]

    def attempt():
        for n_layers, n_kv_heads, d_head, seq_len, batch, nbytes in cases:
            what = f"kv_cache_bytes({n_layers}, {n_kv_heads}, {d_head}, {seq_len}, {batch}, {nbytes})"
            got = _call(what, kv_cache_bytes, n_layers, n_kv_heads, d_head, seq_len, batch, nbytes)
            got = _number(got, what)
            dtype = {2: "bfloat16", 4: "float32"}[nbytes]
            expected = scaling.kv_cache_bytes(n_layers, n_kv_heads, d_head, seq_len, batch, dtype)
            if got == expected / 2:
                raise Mismatch(f"{what}: got {got:,.0f}, half of {expected:,.0f}: a cache keeps a key AND a value.")
            expect_close(got, expected, what, tol=0.5)

    return check("1", attempt, "2 × layers × KV heads × d_head × tokens × batch × bytes: "
                               "Llama-2-7B's cache at 4,096 tokens is 2 GiB per sequence.")


def exercise_2(absmax_int8: Callable[[torch.Tensor], tuple]) -> Result:
    """Per-tensor absmax int8: returns (codes as torch.int8, scale) with x ≈ codes * scale."""
    g = torch.Generator().manual_seed(11)
    cases = [torch.tensor([0.5, -1.27, 0.0, 1.0]), torch.randn(4, 6, generator=g) * 3,
             torch.tensor([-2.0, 0.001, 0.002])]

    def attempt():
        for x in cases:
            what = f"absmax_int8(tensor of shape {tuple(x.shape)})"
            got = _call(what, absmax_int8, x.clone())
            expect(isinstance(got, tuple) and len(got) == 2,
                   f"{what}: expected a tuple (codes, scale), got {what_it_is(got)}.")
            codes, scale = got
            if not isinstance(codes, torch.Tensor):
                raise Mismatch(f"{what}: codes: expected a torch.Tensor of int8 codes, got {what_it_is(codes)}.")
            expect_equal(codes.dtype, torch.int8, f"{what}: codes.dtype")
            scale = _number(scale, f"{what}: scale", "one number (a float or a one-element tensor)")
            reference = quantization.absmax_quantize(x, bits=8)
            expect_close(scale, float(reference.scale), f"{what}: scale (max |x| / 127)", tol=1e-6)
            expect_equal(tuple(codes.shape), tuple(x.shape), f"{what}: codes.shape")
            expect(int(codes.abs().max()) == 127, f"{what}: the largest |code| should be 127 (the value with the "
                                                  f"largest magnitude maps to ±127), got {int(codes.abs().max())}")
            expect_close(codes, reference.q, f"{what}: codes (round(x / scale))", tol=0)

    return check("2", attempt, "scale = max|x| / 127 and q = round(x / scale): what torch.quantize_per_tensor "
                               "computes with zero_point 0.")


def exercise_3(pack_int4: Callable[[torch.Tensor], torch.Tensor]) -> Result:
    """Two 4-bit codes per byte: even positions in the low nibble, odd positions in the high nibble."""
    g = torch.Generator().manual_seed(3)
    cases = [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([15, 0, 0, 15], dtype=torch.uint8),
             torch.randint(0, 16, (3, 8), generator=g, dtype=torch.uint8)]

    def attempt():
        for codes in cases:
            what = f"pack_int4({codes.tolist()})" if codes.dim() == 1 else f"pack_int4(codes of shape {tuple(codes.shape)})"
            got = _call(what, pack_int4, codes.clone())
            if not isinstance(got, torch.Tensor):
                raise Mismatch(f"{what}: expected a torch.uint8 tensor, got {what_it_is(got)}.")
            expect_equal(got.dtype, torch.uint8, f"{what}.dtype")
            expect_equal(tuple(got.shape), (*codes.shape[:-1], codes.shape[-1] // 2), f"{what}.shape")
            back = quantization.unpack_int4(got)
            if torch.equal(back, codes):
                continue
            swapped = torch.stack([back[..., 1::2], back[..., 0::2]], -1).reshape(codes.shape)
            if torch.equal(swapped, codes):
                raise Mismatch(f"{what}: the nibbles are swapped: put codes[0::2] in the low 4 bits, codes[1::2] << 4 in the high.")
            raise Mismatch(f"{what}: unpacking gives {back.tolist()}, not the codes you packed.")

    return check("3", attempt, "Half the bytes, nothing lost: unpack(pack(codes)) == codes.")


def exercise_4(all_reduce_bytes: Callable[[float, int, float], float]) -> Result:
    """Bytes each device sends in a ring all-reduce of the gradients of n_params parameters."""
    cases = [(1e9, 2, 2), (1e9, 8, 2), (7e9, 4, 4), (1e6, 1, 2)]

    def attempt():
        for n_params, world, nbytes in cases:
            what = f"all_reduce_bytes({n_params:g}, world={world}, bytes_per_value={nbytes})"
            got = _call(what, all_reduce_bytes, n_params, world, nbytes)
            got = _number(got, what)
            expected = distributed.communication_bytes("ddp", n_params, world, nbytes)
            if world > 1 and abs(got - n_params * nbytes * (world - 1) / world) < 1:
                raise Mismatch(f"{what}: got {got:,.0f}, that is one reduce-scatter; an all-reduce is a "
                               "reduce-scatter then an all-gather, each (N-1)/N of the gradients.")
            expect_close(got, expected, what, tol=0.5)

    return check("4", attempt, "2·(N-1)/N × the gradients' size: almost twice the model per step, whatever N is.")


__all__ = ["exercise_1", "exercise_2", "exercise_3", "exercise_4"]
