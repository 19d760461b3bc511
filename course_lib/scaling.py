"""Back-of-the-envelope numbers for training and serving LLMs: FLOPs, days, dollars, bytes.

Notebook 08 checks the pre-training calculator against published figures (GPT-3: ≈ 3.1e23 FLOP);
notebook 11 uses the memory arithmetic (a 7B model needs ≈ 14 GB in bf16).
"""

from __future__ import annotations

from dataclasses import dataclass

from course_lib.validation import check_choice, check_number, check_positive_int, check_type

SECONDS_PER_DAY = 86_400
PETAFLOP_S_DAY = 1e15 * SECONDS_PER_DAY  # the unit OpenAI's papers use: 8.64e19 FLOP

BYTES_PER_PARAM = {
    "float32": 4.0, "fp32": 4.0,
    "bfloat16": 2.0, "bf16": 2.0, "float16": 2.0, "fp16": 2.0,
    "int8": 1.0, "fp8": 1.0,
    "int4": 0.5, "nf4": 0.5,
}


def training_flops(n_params: float, n_tokens: float) -> float:
    """≈ 6·N·D: each token costs 2N FLOPs forward and 4N backward (Kaplan et al., 2020)."""
    check_number("n_params", n_params, positive=True)
    check_number("n_tokens", n_tokens, positive=True)
    return 6.0 * n_params * n_tokens


def training_days(flops: float, n_gpus: int, peak_flops: float, mfu: float = 0.4) -> float:
    """Days of wall-clock time for `flops` on `n_gpus` each doing `peak_flops`·`mfu` useful FLOP/s.

    MFU (model FLOPs utilisation) is the fraction of the hardware's peak that training really uses:
    30-50 % is typical for large runs.
    """
    check_number("flops", flops, positive=True)
    check_number("n_gpus", n_gpus, positive=True)
    check_number("peak_flops", peak_flops, positive=True)
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu: expected a fraction in (0, 1], got {mfu}")
    return flops / (n_gpus * peak_flops * mfu) / SECONDS_PER_DAY


def gpu_hours(flops: float, peak_flops: float, mfu: float = 0.4) -> float:
    """GPU-hours for `flops` on GPUs of `peak_flops` at utilisation `mfu` (cost = hours × price)."""
    return training_days(flops, 1, peak_flops, mfu) * 24


def petaflop_s_days(flops: float) -> float:
    """FLOPs expressed in petaflop/s-days (1 PF/s sustained for a day = 8.64e19 FLOP)."""
    return check_number("flops", flops, positive=True) / PETAFLOP_S_DAY


def model_memory_bytes(n_params: float, dtype: str = "bfloat16") -> float:
    """Bytes to hold `n_params` weights in `dtype` (weights only; no activations or KV cache)."""
    return check_number("n_params", n_params, positive=True) * _bytes_per_value(dtype)


def lora_parameter_count(n_layers: int, d_model: int, rank: int, matrices_per_layer: int = 2,
                         d_out: int | None = None) -> int:
    """Trainable parameters of LoRA: each adapted d_model×d_out matrix adds A (r×d_model) and B (d_out×r).

    The LoRA paper's GPT-3 setting: 96 layers, d_model 12,288, r = 4 on W_q and W_v (2 per layer).
    """
    for name, value in (("n_layers", n_layers), ("d_model", d_model), ("rank", rank),
                        ("matrices_per_layer", matrices_per_layer)):
        check_positive_int(name, value)
    d_out = d_model if d_out is None else d_out
    return n_layers * matrices_per_layer * rank * (d_model + d_out)


# --- Notebook 08: the pre-training numbers table -------------------------------------------------


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
    check_number("n_gpus", n_gpus, positive=True)
    check_number("peak_flops", peak_flops, positive=True)
    check_number("days", days, positive=True)
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu: expected a fraction in (0, 1], got {mfu}")
    return n_gpus * peak_flops * mfu * days * SECONDS_PER_DAY


def training_cost(flops: float, peak_flops: float, price_per_gpu_hour: float, mfu: float = 0.4) -> float:
    """Dollars to rent the GPU-hours that `flops` need at utilisation `mfu` (compute only)."""
    price = check_number("price_per_gpu_hour", price_per_gpu_hour, positive=True)
    return gpu_hours(flops, peak_flops, mfu) * price


def implied_mfu(flops: float, gpu_hours_used: float, peak_flops: float) -> float:
    """The utilisation a run must have had: useful FLOPs / (GPU-hours × peak). LLaMA 2 7B: ≈ 0.4."""
    flops, hours, peak = (check_number(name, value, positive=True) for name, value in
                          (("flops", flops), ("gpu_hours_used", gpu_hours_used), ("peak_flops", peak_flops)))
    return flops / (hours * 3600 * peak)


def implied_tokens(flops: float, n_params: float) -> float:
    """Tokens seen in training if compute = 6·N·D: D = flops / (6·N) (for models that publish no D)."""
    check_number("flops", flops, positive=True)
    check_number("n_params", n_params, positive=True)
    return flops / (6.0 * n_params)


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


# --- Memory arithmetic: what a model needs to be served or trained (notebook 11) ---------------------


A10G_BYTES = 24e9  # the NVIDIA A10G of an AWS g5.2xlarge, the course's GPU instance

# Bytes each parameter costs while training, by recipe. Mixed precision keeps bf16 weights and gradients
# for the arithmetic and an fp32 master copy plus Adam's two moments for the update: 2 + 2 + 12 = 16.
TRAINING_BYTES_PER_PARAM = {
    "fp32 adam": {"weights": 4.0, "gradients": 4.0, "optimizer states": 8.0},
    "mixed-precision adam": {"weights": 2.0, "gradients": 2.0, "optimizer states": 12.0},
    "fp32 sgd": {"weights": 4.0, "gradients": 4.0, "optimizer states": 0.0},
}
FINETUNING_METHODS = ("full", "lora", "qlora")
# NF4 stores one 8-bit scale per 64 weights and one fp32 scale per 256 of those: 8/64 + 32/(64·256) bits.
QLORA_CONSTANT_BITS = 8 / 64 + 32 / (64 * 256)


def _bytes_per_value(dtype: str) -> float:
    return BYTES_PER_PARAM[check_choice("dtype", dtype, sorted(BYTES_PER_PARAM))]


@dataclass(frozen=True)
class TransformerShape:
    """The sizes that decide a Llama-style decoder's memory: layers, widths, heads, vocabulary.

    `n_kv_heads` < `n_heads` is grouped-query attention (keys and values shared by several heads);
    `gated_mlp` is SwiGLU's three matrices instead of two.
    """

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    vocab_size: int
    tied_embeddings: bool = True
    gated_mlp: bool = True

    def __post_init__(self):
        for field_name in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_ff", "vocab_size"):
            check_positive_int(field_name, getattr(self, field_name))
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads, n_kv_heads: expected d_model % n_heads == 0 and n_heads % n_kv_heads == 0, "
                             f"got d_model={self.d_model}, n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_params(self) -> int:
        """Parameters: embeddings (+ an untied output head), per layer q/k/v/o, the MLP and two norms."""
        kv_width = self.n_kv_heads * self.d_head
        attention = 2 * self.d_model * self.d_model + 2 * self.d_model * kv_width
        mlp = (3 if self.gated_mlp else 2) * self.d_model * self.d_ff
        per_layer = attention + mlp + 2 * self.d_model
        embeddings = self.vocab_size * self.d_model * (1 if self.tied_embeddings else 2)
        return embeddings + self.n_layers * per_layer + self.d_model


SMOLLM2_135M = TransformerShape("SmolLM2-135M", n_layers=30, d_model=576, n_heads=9, n_kv_heads=3,
                                d_ff=1536, vocab_size=49152, tied_embeddings=True)
LLAMA2_7B = TransformerShape("Llama-2-7B", n_layers=32, d_model=4096, n_heads=32, n_kv_heads=32,
                             d_ff=11008, vocab_size=32000, tied_embeddings=False)


def training_state_bytes(n_params: float, recipe: str = "mixed-precision adam") -> dict[str, float]:
    """Bytes of weights, gradients and optimizer states for training `n_params` with `recipe`.

    Both Adam recipes cost 16 bytes per parameter: a 7B model needs ~112 GB before any activation.
    """
    check_choice("recipe", recipe, sorted(TRAINING_BYTES_PER_PARAM))
    n = check_number("n_params", n_params, positive=True)
    return {part: n * per_param for part, per_param in TRAINING_BYTES_PER_PARAM[recipe].items()}


def kv_cache_bytes(n_layers: int, n_kv_heads: int, d_head: int, seq_len: int, batch: int = 1,
                   dtype: str = "bfloat16") -> float:
    """Bytes of the KV cache: a key and a value vector per layer, KV head, position and sequence."""
    for name, value in (("n_layers", n_layers), ("n_kv_heads", n_kv_heads), ("d_head", d_head),
                        ("seq_len", seq_len), ("batch", batch)):
        check_positive_int(name, value)
    return 2.0 * n_layers * n_kv_heads * d_head * seq_len * batch * _bytes_per_value(dtype)


# What one GPT layer keeps for its backward pass, per token, in 16-bit (2 bytes a value, 1 byte a dropout
# mask value), counted tensor by tensor in Korthikanti et al. (2022), "Reducing Activation Recomputation in
# Large Transformer Models", section 4.1. Units: bytes per unit of width d_model.
ATTENTION_BYTES_PER_WIDTH = 11  # input of q/k/v 2, q and k for the scores 4, v 2, out-projection input 2, dropout mask 1
MLP_BYTES_PER_WIDTH = 19  # input 2, the 4·d-wide GeLU input 8 and GeLU output 8, dropout mask 1
NORM_BYTES_PER_WIDTH = 4  # the inputs of the layer's two layer norms, 2 each
ACTIVATION_BYTES_PER_WIDTH = ATTENTION_BYTES_PER_WIDTH + MLP_BYTES_PER_WIDTH + NORM_BYTES_PER_WIDTH  # 34
# Per head and per key a token attends to: the softmax output 2, its dropout mask 1, the dropout's output 2.
ATTENTION_SCORE_BYTES = 5


def activation_bytes_per_token(d_model: int, n_heads: int = 1, seq_len: int = 1,
                               flash_attention: bool = True) -> dict[str, float]:
    """Bytes one GPT layer keeps per token for backward in 16-bit, by part (notebook 11).

    34·d_model = attention 11·d + feed-forward 19·d + layer norms 4·d; without a fused attention kernel the
    seq_len × seq_len score matrices add 5·n_heads·seq_len (Korthikanti et al., 2022).
    """
    for name, value in (("d_model", d_model), ("n_heads", n_heads), ("seq_len", seq_len)):
        check_positive_int(name, value)
    return {"attention": float(ATTENTION_BYTES_PER_WIDTH * d_model),
            "feed-forward": float(MLP_BYTES_PER_WIDTH * d_model),
            "layer norms": float(NORM_BYTES_PER_WIDTH * d_model),
            "attention scores": 0.0 if flash_attention else float(ATTENTION_SCORE_BYTES * n_heads * seq_len)}


def activation_bytes(n_layers: int, d_model: int, seq_len: int, batch: int = 1, n_heads: int = 1,
                     flash_attention: bool = True, dtype: str = "bfloat16") -> float:
    """Bytes autograd keeps for the backward pass of a GPT-style stack (no recomputation).

    Per layer and token `activation_bytes_per_token`: 34·d_model in 16-bit, plus 5·n_heads·seq_len for the
    attention scores, which a fused (flash) attention kernel never stores. fp32 doubles it.
    Gradient checkpointing keeps far less (one vector per token per layer, recomputing the rest).
    """
    for name, value in (("n_layers", n_layers), ("batch", batch)):
        check_positive_int(name, value)
    per_token = sum(activation_bytes_per_token(d_model, n_heads, seq_len, flash_attention).values())
    return float(n_layers) * seq_len * batch * per_token * _bytes_per_value(dtype) / 2


def saved_activation_bytes(model, *args, **kwargs) -> int:
    """Measured: bytes of the tensors autograd saves for backward during `model(*args, **kwargs)`,
    each storage counted once and the model's own parameters left out."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(*args, **kwargs)
    return sum(saved.values())


def inference_memory_bytes(shape: TransformerShape, dtype: str = "bfloat16", seq_len: int = 4096,
                           batch: int = 1, kv_dtype: str = "bfloat16") -> dict[str, float]:
    """Weights in `dtype` plus the KV cache (in `kv_dtype`) of `batch` sequences of `seq_len` tokens."""
    check_type("shape", shape, TransformerShape)
    return {"weights": model_memory_bytes(shape.n_params, dtype),
            "kv cache": kv_cache_bytes(shape.n_layers, shape.n_kv_heads, shape.d_head, seq_len, batch, kv_dtype)}


def finetuning_memory_bytes(shape: TransformerShape, method: str = "full", seq_len: int = 512, batch: int = 1,
                            rank: int = 8, matrices_per_layer: int = 2) -> dict[str, float]:
    """Memory of one fine-tuning step: weights, gradients, optimizer states, activations.

    full: mixed-precision Adam on every weight. lora: frozen bf16 base plus trainable rank-`rank` adapters
    on `matrices_per_layer` d_model×d_model matrices per layer. qlora: the same with a 4-bit NF4 base plus
    its quantization constants, ~0.127 bits per weight with double quantization (Dettmers et al., 2023).
    """
    check_type("shape", shape, TransformerShape)
    check_choice("method", method, FINETUNING_METHODS)
    activations = activation_bytes(shape.n_layers, shape.d_model, seq_len, batch, shape.n_heads)
    if method == "full":
        return {**training_state_bytes(shape.n_params, "mixed-precision adam"), "activations": activations}
    adapters = lora_parameter_count(shape.n_layers, shape.d_model, rank, matrices_per_layer)
    base = model_memory_bytes(shape.n_params, "bfloat16" if method == "lora" else "int4")
    if method == "qlora":
        base += shape.n_params * QLORA_CONSTANT_BITS / 8
    adapter_state = training_state_bytes(adapters, "mixed-precision adam")
    return {"weights": base + adapter_state["weights"], "gradients": adapter_state["gradients"],
            "optimizer states": adapter_state["optimizer states"], "activations": activations}


# --- Many GPUs: what each one holds (ZeRO, tensor and pipeline parallelism) and how long training takes --

PARALLEL_STRATEGIES = ("dp", "zero1", "zero2", "zero3")
STRATEGY_NAMES = {"dp": "data parallel", "zero1": "ZeRO-1 (optimizer states)",
                  "zero2": "ZeRO-2 (+ gradients)", "zero3": "ZeRO-3 / FSDP (+ parameters)"}
GPU_MEMORY_BYTES = {"A10G": 24e9, "A100 40GB": 40e9, "A100 80GB": 80e9, "H100 80GB": 80e9}


def model_state_bytes_per_gpu(n_params: float, n_gpus: int, strategy: str = "dp", k: float = 12.0,
                              tp: int = 1, pp: int = 1) -> dict[str, float]:
    """Bytes of parameters, gradients and optimizer states one GPU holds (Rajbhandari et al., 2020).

    Mixed-precision Adam keeps 2 bytes of fp16/bf16 parameters and 2 of gradients per parameter, and
    K = 12 bytes of optimizer state (an fp32 copy of the parameters and Adam's two moments). Tensor
    parallelism (degree `tp`) and pipeline parallelism (degree `pp`) first give each GPU 1/(tp·pp) of
    the model; the remaining n_gpus / (tp·pp) data-parallel copies then shard, depending on `strategy`:
    "dp" nothing, "zero1" the optimizer states, "zero2" also the gradients, "zero3" also the parameters
    (FSDP's full sharding). The paper's 7.5 B model on 64 GPUs: 120, 31.4, 16.6 and 1.9 GB.
    """
    n = check_number("n_params", n_params, positive=True)
    check_positive_int("n_gpus", n_gpus)
    check_choice("strategy", strategy, PARALLEL_STRATEGIES)
    check_number("k", k, positive=True)
    check_positive_int("tp", tp)
    check_positive_int("pp", pp)
    if n_gpus % (tp * pp):
        raise ValueError(f"n_gpus: expected a multiple of tp x pp = {tp * pp}, got {n_gpus}")
    dp = n_gpus // (tp * pp)
    local = n / (tp * pp)  # the share of the model this GPU's tensor/pipeline slice holds
    shard = {"dp": (1, 1, 1), "zero1": (1, 1, dp), "zero2": (1, dp, dp), "zero3": (dp, dp, dp)}[strategy]
    return {"parameters": 2 * local / shard[0], "gradients": 2 * local / shard[1],
            "optimizer states": k * local / shard[2]}


def layer_activation_bytes(shape: TransformerShape, seq_len: int, micro_batch: int = 1, tp: int = 1,
                           recompute: bool = False) -> float:
    """Activations one transformer layer keeps for the backward pass, in 16-bit, per GPU.

    Korthikanti et al. (2022) with a fused attention kernel and sequence parallelism: s·b·h·34/t
    (34 = `ACTIVATION_BYTES_PER_WIDTH`)
    bytes. With full recomputation only the layer's input is kept (2·s·b·h/t bytes) and the rest is
    computed again in the backward pass, one more forward pass of compute.
    """
    check_type("shape", shape, TransformerShape)
    check_positive_int("seq_len", seq_len)
    check_positive_int("micro_batch", micro_batch)
    check_positive_int("tp", tp)
    per_token = 2.0 if recompute else ACTIVATION_BYTES_PER_WIDTH
    return seq_len * micro_batch * shape.d_model * per_token / tp


def per_gpu_memory(shape: TransformerShape, n_gpus: int, strategy: str = "dp", tp: int = 1, pp: int = 1,
                   seq_len: int = 2048, micro_batch: int = 1, recompute: bool = False) -> dict[str, float]:
    """Training memory of one GPU: `model_state_bytes_per_gpu` plus the activations of its pp-th of the
    layers (all micro-batches in flight on the first pipeline stage are counted once: 1F1B keeps pp)."""
    check_type("shape", shape, TransformerShape)
    states = model_state_bytes_per_gpu(shape.n_params, n_gpus, strategy, tp=tp, pp=pp)
    layers = -(-shape.n_layers // pp)  # this GPU's layers (rounded up)
    in_flight = pp  # 1F1B: the first stage holds up to pp micro-batches' activations
    activations = layers * in_flight * layer_activation_bytes(shape, seq_len, micro_batch, tp, recompute)
    return {**states, "activations": activations}


def serving_memory_per_gpu(shape: TransformerShape, tp: int = 1, dtype: str = "bfloat16", seq_len: int = 4096,
                           batch: int = 1) -> dict[str, float]:
    """Serving memory of one GPU with tensor parallelism `tp`: its 1/tp of the weights and of the KV cache
    (each GPU keeps the keys and values of its own heads)."""
    check_positive_int("tp", tp)
    parts = inference_memory_bytes(shape, dtype, seq_len, batch)
    return {part: value / tp for part, value in parts.items()}


def training_days_with_recompute(n_params: float, n_tokens: float, n_gpus: int, flops_per_gpu: float,
                                 recompute: bool = True) -> float:
    """Days to train: 8·N·D FLOP with full activation recomputation (one extra forward pass on top of
    6·N·D), at `flops_per_gpu` achieved FLOP/s per GPU (Narayanan et al., 2021, eq. 4: 8TP / nX)."""
    check_number("n_params", n_params, positive=True)
    check_number("n_tokens", n_tokens, positive=True)
    check_positive_int("n_gpus", n_gpus)
    check_number("flops_per_gpu", flops_per_gpu, positive=True)
    flops = (8.0 if recompute else 6.0) * n_params * n_tokens
    return flops / (n_gpus * flops_per_gpu) / SECONDS_PER_DAY


GPT3_175B = TransformerShape("GPT-3 175B", n_layers=96, d_model=12288, n_heads=96, n_kv_heads=96, d_ff=49152,
                             vocab_size=50257, tied_embeddings=True, gated_mlp=False)
LLAMA2_70B = TransformerShape("Llama-2-70B", n_layers=80, d_model=8192, n_heads=64, n_kv_heads=8, d_ff=28672,
                              vocab_size=32000, tied_embeddings=False)


def gpus_needed(shape: TransformerShape, gpu: str, task: str, strategy: str = "zero3", seq_len: int = 2048,
                recompute: bool = True, max_gpus: int = 4096) -> int | None:
    """The fewest GPUs of kind `gpu` (a key of GPU_MEMORY_BYTES) on which `task` fits, powers of two only:
    "serve": bf16 weights and a 4,096-token KV cache, tensor parallel over the GPUs;
    "fine-tune lora": a frozen bf16 model and the activations of one `seq_len` sequence, both split by
    tensor parallelism (the adapters are negligible);
    "train": mixed-precision Adam sharded by `strategy` over data-parallel GPUs, one micro-batch of
    `seq_len` tokens, activations recomputed or not.
    None if not even `max_gpus` are enough. 10 % of each GPU is kept free for the framework."""
    check_choice("gpu", gpu, sorted(GPU_MEMORY_BYTES))
    check_choice("task", task, ("serve", "fine-tune lora", "train"))
    budget = 0.9 * GPU_MEMORY_BYTES[gpu]
    n = 1
    while n <= max_gpus:
        if task == "serve":
            need = sum(serving_memory_per_gpu(shape, tp=n).values())
        elif task == "fine-tune lora":
            parts = finetuning_memory_bytes(shape, "lora", seq_len=seq_len)
            need = parts["weights"] / n + parts["activations"] / n
        else:
            need = sum(per_gpu_memory(shape, n, strategy, seq_len=seq_len, recompute=recompute).values())
        if need <= budget:
            return n
        n *= 2
    return None
