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


# --- Notebook 08: the pre-training numbers table -------------------------------------------------

from dataclasses import dataclass  # noqa: E402  (kept with the code that uses it, to ease merges)

# Dense peak throughput in the precision large models train in (bf16/fp16 tensor cores, no sparsity).
PEAK_FLOPS = {
    "V100": 125e12,    # fp16 tensor cores (GPT-3's generation)
    "A100": 312e12,    # bf16 (LLaMA 2, GPT-4)
    "H100": 989e12,    # bf16, SXM
    "TPU v4": 275e12,  # bf16 (PaLM)
}


def cluster_flops(n_gpus: int, peak_flops: float, mfu: float, days: float) -> float:
    """FLOPs a cluster delivers: chips × peak × utilisation × seconds (training_days run backwards).

    This is how the GPT-4 estimate is made: ~25,000 A100s × 90-100 days × 32-36 % MFU ≈ 2e25 FLOP.
    """
    _positive("n_gpus", n_gpus)
    _positive("peak_flops", peak_flops)
    _positive("days", days)
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu: expected a fraction in (0, 1], got {mfu}")
    return n_gpus * peak_flops * mfu * days * SECONDS_PER_DAY


def training_cost(flops: float, peak_flops: float, price_per_gpu_hour: float, mfu: float = 0.4) -> float:
    """Dollars to rent the GPU-hours that `flops` need at utilisation `mfu` (compute only)."""
    return gpu_hours(flops, peak_flops, mfu) * _positive("price_per_gpu_hour", price_per_gpu_hour)


def implied_mfu(flops: float, gpu_hours_used: float, peak_flops: float) -> float:
    """The utilisation a run must have had: useful FLOPs / (GPU-hours × peak). LLaMA 2 7B: ≈ 0.4."""
    return _positive("flops", flops) / (_positive("gpu_hours_used", gpu_hours_used) * 3600
                                        * _positive("peak_flops", peak_flops))


def implied_tokens(flops: float, n_params: float) -> float:
    """Tokens seen in training if compute = 6·N·D: D = flops / (6·N) (for models that publish no D)."""
    return _positive("flops", flops) / (6.0 * _positive("n_params", n_params))


@dataclass(frozen=True)
class PublishedModel:
    """One row of notebook 08's table: what was published (or credibly estimated) about a training run.

    `n_params` is what works on each token (for a mixture of experts, the active parameters, which is
    what 6·N·D needs); `total_params` is the size on disk. None = not published.
    """

    name: str
    year: int
    n_params: float
    n_tokens: float | None
    published_flops: float | None = None
    published_gpu_hours: float | None = None
    hardware: str | None = None
    total_params: float | None = None
    source: str = ""

    @property
    def flops(self) -> float:
        """Our estimate: 6·N·D when the tokens are known, else the published figure."""
        if self.n_tokens is not None:
            return training_flops(self.n_params, self.n_tokens)
        if self.published_flops is None:
            raise ValueError(f"{self.name}: neither the tokens nor the compute are known")
        return self.published_flops


PUBLISHED_MODELS: tuple[PublishedModel, ...] = (
    PublishedModel("GPT-1", 2018, 117e6, None, published_flops=1.7e19, hardware="8 GPUs, 1 month",
                   source="Radford et al. 2018; compute is an outside estimate, tokens seen not published"),
    PublishedModel("GPT-2", 2019, 1.5e9, None, published_flops=1.5e21,
                   source="Radford et al. 2019; 'tens of petaflop/s-days', tokens seen not published"),
    PublishedModel("GPT-3", 2020, 175e9, 300e9, published_flops=3.14e23, hardware="V100",
                   source="Brown et al. 2020: 3,640 petaflop/s-days"),
    PublishedModel("PaLM", 2022, 540e9, 780e9, published_flops=2.56e24, hardware="TPU v4",
                   source="Chowdhery et al. 2022: 6,144 + 3,072 TPU v4 chips, 46.2 % MFU"),
    PublishedModel("LLaMA 2 7B", 2023, 7e9, 2e12, published_gpu_hours=184_320, hardware="A100",
                   source="Touvron et al. 2023: A100-80GB GPU-hours"),
    PublishedModel("LLaMA 2 13B", 2023, 13e9, 2e12, published_gpu_hours=368_640, hardware="A100",
                   source="Touvron et al. 2023: A100-80GB GPU-hours"),
    PublishedModel("LLaMA 2 70B", 2023, 70e9, 2e12, published_gpu_hours=1_720_320, hardware="A100",
                   source="Touvron et al. 2023: A100-80GB GPU-hours"),
    PublishedModel("GPT-4", 2023, 280e9, 13e12, published_flops=2.15e25, hardware="A100",
                   total_params=1.8e12,
                   source="not published: leaked estimates (MoE, 2 of 16 experts per token, ~25,000 A100s)"),
)
