"""Back-of-the-envelope numbers for training and serving LLMs: FLOPs, days, dollars, bytes.

Notebook 08 checks the pre-training calculator against published figures (GPT-3: ≈ 3.1e23 FLOP);
notebook 11 uses the memory arithmetic (a 7B model needs ≈ 14 GB in bf16).
"""

from __future__ import annotations

SECONDS_PER_DAY = 86_400
PETAFLOP_S_DAY = 1e15 * SECONDS_PER_DAY  # the unit OpenAI's papers use: 8.64e19 FLOP

BYTES_PER_PARAM = {
    "float32": 4.0, "fp32": 4.0,
    "bfloat16": 2.0, "bf16": 2.0, "float16": 2.0, "fp16": 2.0,
    "int8": 1.0, "fp8": 1.0,
    "int4": 0.5, "nf4": 0.5,
}


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name}: expected a positive number, got {value}")
    return float(value)


def training_flops(n_params: float, n_tokens: float) -> float:
    """≈ 6·N·D: each token costs 2N FLOPs forward and 4N backward (Kaplan et al., 2020)."""
    return 6.0 * _positive("n_params", n_params) * _positive("n_tokens", n_tokens)


def training_days(flops: float, n_gpus: int, peak_flops: float, mfu: float = 0.4) -> float:
    """Days of wall-clock time for `flops` on `n_gpus` each doing `peak_flops`·`mfu` useful FLOP/s.

    MFU (model FLOPs utilisation) is the fraction of the hardware's peak that training really uses:
    30-50 % is typical for large runs.
    """
    _positive("flops", flops)
    _positive("n_gpus", n_gpus)
    _positive("peak_flops", peak_flops)
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu: expected a fraction in (0, 1], got {mfu}")
    return flops / (n_gpus * peak_flops * mfu) / SECONDS_PER_DAY


def gpu_hours(flops: float, peak_flops: float, mfu: float = 0.4) -> float:
    """GPU-hours for `flops` on GPUs of `peak_flops` at utilisation `mfu` (cost = hours × price)."""
    return training_days(flops, 1, peak_flops, mfu) * 24


def petaflop_s_days(flops: float) -> float:
    """FLOPs expressed in petaflop/s-days (1 PF/s sustained for a day = 8.64e19 FLOP)."""
    return _positive("flops", flops) / PETAFLOP_S_DAY


def model_memory_bytes(n_params: float, dtype: str = "bfloat16") -> float:
    """Bytes to hold `n_params` weights in `dtype` (weights only; no activations or KV cache)."""
    if dtype not in BYTES_PER_PARAM:
        raise ValueError(f"dtype: expected one of {sorted(BYTES_PER_PARAM)}, got {dtype!r}")
    return _positive("n_params", n_params) * BYTES_PER_PARAM[dtype]


def lora_parameter_count(n_layers: int, d_model: int, rank: int, matrices_per_layer: int = 2,
                         d_out: int | None = None) -> int:
    """Trainable parameters of LoRA: each adapted d_model×d_out matrix adds A (r×d_model) and B (d_out×r).

    The LoRA paper's GPT-3 setting: 96 layers, d_model 12,288, r = 4 on W_q and W_v (2 per layer).
    """
    for name, value in (("n_layers", n_layers), ("d_model", d_model), ("rank", rank),
                        ("matrices_per_layer", matrices_per_layer)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    d_out = d_model if d_out is None else d_out
    return n_layers * matrices_per_layer * rank * (d_model + d_out)
