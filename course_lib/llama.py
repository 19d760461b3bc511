"""A Llama in a page: the notebook-07 GPT with five changes, able to run SmolLM2-135M-Instruct.

Notebook 09 builds it. The changes from a GPT-2 block: RMSNorm instead of LayerNorm, rotary position
embeddings (RoPE) applied to queries and keys instead of a learned position table, a SwiGLU
feed-forward instead of GELU, grouped-query attention (fewer key/value heads than query heads), and
no biases. Embeddings are tied to the output layer, as in GPT-2. `Llama.from_hf_state_dict` loads a
transformers `LlamaForCausalLM` state dict; tests check the logits and greedy tokens equal theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib import generation, lora, scaling
from course_lib.attention import KVCache, causal_mask
from course_lib.generation import sampling_probs  # noqa: F401  (notebook 09 uses it from here)
from course_lib.validation import (check_choice, check_file, check_ids_below, check_positive_int,
                                   check_type)

if TYPE_CHECKING:
    from transformers import LlamaConfig as HFLlamaConfig


@dataclass(frozen=True)
class LlamaConfig:
    """The numbers that define a Llama; `from_hf` reads them from a transformers `LlamaConfig`."""

    vocab_size: int = 49_152
    d_model: int = 576
    n_layers: int = 30
    n_heads: int = 9
    n_kv_heads: int = 3
    d_ff: int = 1536
    rope_theta: float = 100_000.0
    norm_eps: float = 1e-5
    max_seq_len: int = 8192
    tie_embeddings: bool = True

    def __post_init__(self):
        for f in fields(self):
            if f.type in ("int", int):
                check_positive_int(f.name, getattr(self, f.name))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model, n_heads: d_model must be a multiple of n_heads, got {self.d_model} and {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads: must divide n_heads={self.n_heads} (each key/value head serves a group "
                             f"of query heads), got {self.n_kv_heads}")
        if self.d_head % 2:
            raise ValueError(f"d_model / n_heads: rotary embeddings need an even head size, got {self.d_head}")
        if not self.rope_theta > 0 or not self.norm_eps > 0:
            raise ValueError(f"rope_theta, norm_eps: expected positive numbers, got {self.rope_theta}, {self.norm_eps}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def from_hf(cls, hf_config) -> "LlamaConfig":
        """Our config from a transformers `LlamaConfig` (e.g. `hf_model.config`)."""
        rope = getattr(hf_config, "rope_parameters", None) or {}
        theta = rope.get("rope_theta", getattr(hf_config, "rope_theta", 10_000.0))
        head_dim = getattr(hf_config, "head_dim", None)
        if head_dim is not None and head_dim * hf_config.num_attention_heads != hf_config.hidden_size:
            raise ValueError(f"hf_config: head_dim={head_dim} x heads != hidden_size; this Llama needs "
                             "d_model = n_heads x d_head")
        return cls(vocab_size=hf_config.vocab_size, d_model=hf_config.hidden_size,
                   n_layers=hf_config.num_hidden_layers, n_heads=hf_config.num_attention_heads,
                   n_kv_heads=hf_config.num_key_value_heads, d_ff=hf_config.intermediate_size,
                   rope_theta=float(theta), norm_eps=float(hf_config.rms_norm_eps),
                   max_seq_len=hf_config.max_position_embeddings,
                   tie_embeddings=bool(getattr(hf_config, "tie_word_embeddings", True)))


class RMSNorm(nn.Module):
    """LayerNorm without the mean and the bias: x / sqrt(mean(x²) + eps) * weight. Cheaper, works as well."""

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d_model))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x32 = x.float()  # the mean of squares in float32, also when the model runs in bf16
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rope_cos_sin(positions: Tensor, d_head: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos and sin tables (len(positions), d_head) of the rotary embedding: pair i turns at theta^(-2i/d_head)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, d_head, 2, dtype=torch.float32, device=positions.device) / d_head))
    angles = positions.float()[:, None] * inv_freq[None, :]  # (length, d_head / 2)
    angles = torch.cat([angles, angles], dim=-1)  # dimension i and i + d_head/2 form one rotating pair
    return angles.cos(), angles.sin()


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension: a 90° turn of every pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate each (x_i, x_{i+d/2}) pair of x (batch, heads, length, d_head) by its position's angle."""
    return x * cos + rotate_half(x) * sin


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """Grouped-query attention: (batch, kv_heads, length, d) -> (batch, kv_heads * n_rep, length, d),
    each key/value head repeated for the n_rep query heads of its group."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


class GroupedQueryAttention(nn.Module):
    """Causal attention with n_heads query heads sharing n_kv_heads key/value heads, RoPE on q and k."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.d_head = config.n_heads, config.n_kv_heads, config.d_head
        self.q_proj = nn.Linear(config.d_model, config.n_heads * config.d_head, bias=False)
        self.k_proj = nn.Linear(config.d_model, config.n_kv_heads * config.d_head, bias=False)
        self.v_proj = nn.Linear(config.d_model, config.n_kv_heads * config.d_head, bias=False)
        self.o_proj = nn.Linear(config.n_heads * config.d_head, config.d_model, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None = None) -> Tensor:
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, self.n_heads, self.d_head).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, self.n_kv_heads, self.d_head).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, self.n_kv_heads, self.d_head).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)  # positions enter here, not at the input
        if cache is not None:
            k, v = cache.update(k, v)  # the cache keeps the n_kv_heads heads only: 3x smaller here
        n_rep = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
        n_keys = k.shape[-2]
        if length == n_keys:  # no earlier positions: plain causal attention
            out = F.scaled_dot_product_attention(q, k, v, is_causal=length > 1)
        elif length == 1:  # one new token looks at everything before it
            out = F.scaled_dot_product_attention(q, k, v)
        else:  # several new tokens after cached ones
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(length, n_keys, device=x.device))
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, self.n_heads * self.d_head))


class SwiGLU(nn.Module):
    """The feed-forward of Llama: down(silu(gate(x)) * up(x)); the gate decides how much of `up` passes."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaBlock(nn.Module):
    """Pre-norm decoder block, as in the GPT: x + attention(norm(x)), then x + feed_forward(norm(x))."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.d_model, config.norm_eps)
        self.self_attn = GroupedQueryAttention(config)
        self.post_attention_layernorm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = SwiGLU(config.d_model, config.d_ff)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None = None) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """Token embedding, n_layers Llama blocks, a final RMSNorm, and the output layer (tied to the embedding)."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        check_type("config", config, LlamaConfig)
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(LlamaBlock(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight  # one matrix reads tokens in and writes them out
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def new_cache(self) -> list[KVCache]:
        """One empty `attention.KVCache` per layer."""
        return [KVCache() for _ in self.layers]

    def forward(self, ids: Tensor, cache: list[KVCache] | None = None, last_only: bool = False) -> Tensor:
        """ids (batch, length) -> logits (batch, length, vocab), or (batch, 1, vocab) with `last_only`.

        With `cache`, `ids` are the tokens after those already cached, placed at the following positions.
        """
        if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.dtype not in (torch.long, torch.int):
            raise ValueError(f"ids: expected an integer tensor (batch, length), got "
                             f"{getattr(ids, 'dtype', type(ids).__name__)} of shape {tuple(getattr(ids, 'shape', ()))}")
        check_ids_below("ids", ids, self.config.vocab_size)
        if cache is not None and len(cache) != len(self.layers):
            raise ValueError(f"cache: expected one KVCache per layer ({len(self.layers)}), got {len(cache)}")
        start = len(cache[0]) if cache is not None else 0
        if start + ids.shape[1] > self.config.max_seq_len:
            raise ValueError(f"ids: {start} cached + {ids.shape[1]} new positions exceed max_seq_len="
                             f"{self.config.max_seq_len}")
        cos, sin = rope_cos_sin(torch.arange(start, start + ids.shape[1], device=ids.device),
                                self.config.d_head, self.config.rope_theta)
        x = self.embed_tokens(ids)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, None if cache is None else cache[i])
        x = self.norm(x[:, -1:] if last_only else x)
        return self.lm_head(x)

    @property
    def context_length(self) -> int:
        """How many positions the model can see at once (`config.max_seq_len`)."""
        return self.config.max_seq_len

    def generate(self, ids: Tensor, max_new_tokens: int, temperature: float = 0.0, top_k: int | None = None,
                 use_cache: bool = True, generator: torch.Generator | None = None, eos_id: int | None = None,
                 top_p: float | None = None) -> Tensor:
        """Append up to `max_new_tokens` tokens to ids (batch, length): the same loop as the GPT's,
        `generation.generate`. temperature 0 (the default) is greedy decoding, so runs repeat; a positive
        temperature samples (with optional top-k / top-p); pass a seeded `generator`."""
        return generation.generate(self, ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                   use_cache=use_cache, generator=generator, eos_id=eos_id)

    @classmethod
    def from_hf_state_dict(cls, config: LlamaConfig | HFLlamaConfig, state_dict: Mapping[str, Tensor]) -> "Llama":
        """A Llama holding the weights of a transformers `LlamaForCausalLM` state dict (names `model.layers.i...`).

        `config` is ours or the transformers `LlamaConfig` (`hf_model.config`), read with `LlamaConfig.from_hf`.
        """
        if _is_hf_llama_config(config):
            config = LlamaConfig.from_hf(config)
        check_type("config", config, LlamaConfig)
        renamed = {}
        for name, tensor in state_dict.items():
            if name.endswith("rotary_emb.inv_freq"):
                continue  # recomputed from rope_theta
            ours = name.removeprefix("model.")
            renamed[ours] = tensor
        # our own copies, so changing this model never changes the one the weights came from
        return _with_weights(config, renamed, "state_dict", lambda t: t.detach().clone())


# openlm-research/open_llama_7b (the course's 7B model, ec2/llama7b.sh): LLaMA-1's shape, separate output layer
OPEN_LLAMA_7B = LlamaConfig(vocab_size=32_000, d_model=4096, n_layers=32, n_heads=32, n_kv_heads=32, d_ff=11_008,
                            rope_theta=10_000.0, norm_eps=1e-6, max_seq_len=2048, tie_embeddings=False)

# LitGPT's names for a Llama's weights -> ours (the transformers names without "model.")
_LITGPT_NAMES = {"transformer.wte.weight": "embed_tokens.weight", "transformer.ln_f.weight": "norm.weight",
                 "lm_head.weight": "lm_head.weight"}
_LITGPT_LAYER_NAMES = {"norm_1.weight": "input_layernorm.weight", "norm_2.weight": "post_attention_layernorm.weight",
                       "attn.proj.weight": "self_attn.o_proj.weight", "mlp.fc_1.weight": "mlp.gate_proj.weight",
                       "mlp.fc_2.weight": "mlp.up_proj.weight", "mlp.proj.weight": "mlp.down_proj.weight"}


def litgpt_to_ours(config: LlamaConfig, state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """LitGPT's Llama state dict (`lit_model.pth`) under our names. LitGPT keeps q, k and v in one matrix
    `attn.qkv` (the three stacked, as its converter writes them); it is cut back into three here."""
    check_type("config", config, LlamaConfig)
    sizes = [config.n_heads * config.d_head, config.n_kv_heads * config.d_head, config.n_kv_heads * config.d_head]
    ours = {}
    for name, tensor in state_dict.items():
        if name in _LITGPT_NAMES:
            ours[_LITGPT_NAMES[name]] = tensor
            continue
        parts = name.split(".", 3)  # transformer, h, i, rest
        if len(parts) != 4 or parts[:2] != ["transformer", "h"]:
            raise ValueError(f"state_dict: {name!r} is not a LitGPT Llama weight name")
        prefix, rest = f"layers.{parts[2]}.", parts[3]
        if rest == "attn.qkv.weight":
            if tensor.shape[0] != sum(sizes):
                raise ValueError(f"state_dict[{name!r}]: expected {sum(sizes)} rows (q, k, v stacked), "
                                 f"got {tensor.shape[0]}")
            for part, chunk in zip(("q_proj", "k_proj", "v_proj"), tensor.split(sizes)):
                ours[prefix + f"self_attn.{part}.weight"] = chunk
        elif rest in _LITGPT_LAYER_NAMES:
            ours[prefix + _LITGPT_LAYER_NAMES[rest]] = tensor
        else:
            raise ValueError(f"state_dict: {name!r} is not a weight of a LitGPT Llama")
    return ours


def load_litgpt_checkpoint(path, config: LlamaConfig = OPEN_LLAMA_7B, device="cpu",
                           dtype: torch.dtype = torch.bfloat16) -> Llama:
    """Our Llama with the weights of a LitGPT checkpoint (`lit_model.pth`, written by `litgpt download` /
    `convert_to_litgpt`), each tensor read from the file (memory-mapped) straight to `device` in `dtype`,
    so a 7B model never needs two copies of its 13.5 GB of bf16 weights."""
    path = check_file("path", path, "ec2/llama7b.sh downloads and converts the 7B checkpoint (ec2/README.md)")
    state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    state = state.get("model", state)  # some LitGPT files wrap the weights in {"model": ...}
    # copy=True: our own tensors, never views of the memory-mapped file
    return _with_weights(config, litgpt_to_ours(config, state), f"path: {path.name}",
                         lambda t: t.to(device, dtype, copy=True))


def _with_weights(config: LlamaConfig, weights: dict[str, Tensor], source: str, convert) -> Llama:
    """A Llama of `config` holding `weights` (our names), each passed through `convert` (copy, move, cast);
    a name or a shape that does not fit the config is a ValueError that names it (`source` says where from)."""
    weights = dict(weights)
    if config.tie_embeddings:
        weights.pop("lm_head.weight", None)  # the same matrix as embed_tokens.weight
    with torch.device("meta"):  # shapes only: no time spent on a random init we would overwrite
        model = Llama(config)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    expected = set(shapes) - ({"lm_head.weight"} if config.tie_embeddings else set())
    missing, unexpected = expected - set(weights), set(weights) - expected
    if missing or unexpected:
        raise ValueError(f"{source}: does not fit this config; missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    for key, tensor in weights.items():
        if shapes[key] != tensor.shape:
            raise ValueError(f"{source}[{key!r}]: expected shape {tuple(shapes[key])}, got {tuple(tensor.shape)}")
    model.load_state_dict({k: convert(v) for k, v in weights.items()}, strict=False, assign=True)
    if config.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    return model.eval()


def random_llama(config: LlamaConfig, device="cpu", dtype: torch.dtype = torch.bfloat16, seed: int = 0) -> Llama:
    """A Llama of `config`'s shape with random weights made directly on `device` in `dtype`: the speed and
    memory of a model whose real weights are not here (its text is noise)."""
    check_type("config", config, LlamaConfig)
    with torch.device("meta"):
        model = Llama(config).to(dtype)  # shapes only, so far: no memory used
    model = model.to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):  # every RMSNorm (input_layernorm, ..., norm): scale 1
                parameter.fill_(1.0)
            else:
                parameter.normal_(0.0, 0.02, generator=generator)
    if config.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    return model.eval()


def _is_hf_llama_config(config) -> bool:
    """Whether `config` is a transformers `LlamaConfig` (checked without importing transformers)."""
    return type(config).__module__.startswith("transformers.") and getattr(config, "model_type", None) == "llama"


def count_parameters(model: nn.Module) -> int:
    """Alias of `lora.count_parameters` (notebook 09 calls it from here): each shared tensor counted once."""
    return lora.count_parameters(model)


_DTYPE_OF_BYTES = {4: "float32", 2: "bfloat16", 1: "int8", 0.5: "int4"}


def kv_cache_bytes(config: LlamaConfig, n_tokens: int, bytes_per_value: float = 4, kv_heads: int | None = None) -> float:
    """Alias of `scaling.kv_cache_bytes` for a LlamaConfig (notebook 09 calls it): `n_tokens` positions, float32."""
    dtype = _DTYPE_OF_BYTES[check_choice("bytes_per_value", bytes_per_value, list(_DTYPE_OF_BYTES))]
    heads = config.n_kv_heads if kv_heads is None else kv_heads
    return scaling.kv_cache_bytes(config.n_layers, heads, config.d_head, n_tokens, dtype=dtype)


__all__ = ["LlamaConfig", "RMSNorm", "rope_cos_sin", "rotate_half", "apply_rope", "repeat_kv",
           "GroupedQueryAttention", "SwiGLU", "LlamaBlock", "Llama", "sampling_probs", "count_parameters",
           "OPEN_LLAMA_7B", "litgpt_to_ours", "load_litgpt_checkpoint", "random_llama",
           "kv_cache_bytes"]
