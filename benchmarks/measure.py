"""Measuring tools for the benchmarks (not lessons): matrix-multiply speed, process memory, the size of a
model saved as safetensors, and a Hugging Face model's logits and generation speed.

Moved out of `course_lib.quantization`, whose lesson is the quantizers themselves; notebook 11 writes its
own short `logits_of` and `tokens_per_second` where it teaches them. `benchmarks/bench_quantization.py`
imports this file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's course_lib

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from course_lib.quantization import _unique_tensors  # noqa: E402  (tied and tensor-subclass weights, once)
from course_lib.runtime import median_time, synchronize  # noqa: E402
from course_lib.validation import check_positive_int, check_type  # noqa: E402


def saved_size_bytes(model: nn.Module) -> int:
    """Size of the safetensors file holding `model`'s state (shared tensors once), written to a temp dir."""
    from safetensors.torch import save_file

    for name, value in model.state_dict().items():
        if not isinstance(value, Tensor):
            raise TypeError(f"model: state entry {name!r} is a {type(value).__name__}, not a tensor; "
                            "safetensors stores plain tensors only")
    state = {name: t.detach().contiguous() for name, t in _unique_tensors(model.state_dict().items()).items()}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.safetensors")
        save_file(state, path)
        return os.path.getsize(path)


def matmul_tflops(dtype: torch.dtype, device="cpu", n: int = 2048, repeat: int = 5) -> float:
    """Speed of an n x n matrix product in `dtype` on `device`, in TFLOP/s (2·n³ operations per product,
    median of `repeat` after a warm-up). A GPU's tensor cores run fp16 and bf16 several times faster
    than fp32; most CPUs do not."""
    check_type("dtype", dtype, torch.dtype, "a torch.dtype such as torch.bfloat16")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype: expected a floating-point dtype, got {dtype}")
    check_positive_int("n", n)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator).to(device, dtype)
    b = torch.randn(n, n, generator=generator).to(device, dtype)
    def product() -> None:
        a @ b
        synchronize(device)

    return 2 * n**3 / median_time(product, repeat=repeat) / 1e12


def resident_mb() -> float:
    """This process's resident memory in MB, after handing freed memory back to the OS where possible,
    so that the difference of two readings is what was built in between."""
    import ctypes
    import gc

    import psutil

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed blocks otherwise
    except (OSError, AttributeError):  # not glibc (macOS, Windows): the reading is just less tidy
        pass
    return psutil.Process().memory_info().rss / 1e6


@torch.no_grad()
def hf_logits(model: nn.Module, ids: Tensor) -> Tensor:
    """Logits (T, vocab) of a Hugging Face causal LM for one sequence of ids (T,), as float32."""
    return model(torch.as_tensor(ids).reshape(1, -1)).logits[0].float()


@torch.no_grad()
def hf_tokens_per_second(model: nn.Module, tokenizer, prompt: str, n_tokens: int = 32) -> float:
    """Greedy generation speed of a Hugging Face model: exactly `n_tokens` new tokens, timed."""
    import time

    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    synchronize(model.device)
    start = time.perf_counter()
    model.generate(**inputs, max_new_tokens=n_tokens, min_new_tokens=n_tokens, do_sample=False)
    synchronize(model.device)
    return n_tokens / (time.perf_counter() - start)


__all__ = ["saved_size_bytes", "matmul_tflops", "resident_mb", "hf_logits", "hf_tokens_per_second"]
