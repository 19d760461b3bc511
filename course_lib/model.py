"""The transformer, built from the attention of notebooks 03-06: blocks and a GPT.

Notebook 06 builds `FeedForward` and `Block` (attention + feed-forward, stacked); notebook 07 turns
the knobs of a deep stack (`norm="pre" | "post" | "none"`, `skip`, `dropout`) and trains the
decoder-only `GPT` on the Python docs (its encoder-decoder translator, built from the same `Block`,
lives in `course_lib.seq2seq`).
With the same configuration and weights, `GPT` computes exactly what Hugging Face's
`GPT2LMHeadModel` computes (`GPT.from_hf_gpt2`); notebooks 08, 09 and 11 start from it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib import generation
from course_lib.attention import KVCache, MultiHeadAttention
from course_lib.generation import sample_next  # noqa: F401  (kept importable from here: notebook 07 builds it)
from course_lib.validation import (check_choice, check_ids_below, check_positive_int,
                                   check_type)

NORMS = ("pre", "post", "none")


@dataclass
class GPTConfig:
    """Sizes and switches of a GPT (a stack of causal transformer blocks).

    vocab_size: number of token ids; context_length: longest sequence the model reads (positions);
    d_model: width of every vector; n_layers: blocks stacked; n_heads: attention heads per block;
    d_ff: hidden width of the feed-forward layer (default 4 * d_model); dropout: probability used on
    embeddings, attention weights and each block's output; bias: biases in the linear layers;
    norm: "pre" (GPT-2: normalize before each sub-layer), "post" (the 2017 paper: after the residual
    add) or "none"; skip: keep the residual (skip) connections; tie_weights: the output layer reuses
    the token-embedding matrix; layer_norm_eps: LayerNorm's epsilon (1e-5 as in GPT-2).
    """

    vocab_size: int = 512
    context_length: int = 128
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int | None = None
    dropout: float = 0.0
    bias: bool = True
    norm: str = "pre"
    skip: bool = True
    tie_weights: bool = True
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "d_model", "n_layers", "n_heads"):
            check_positive_int(name, getattr(self, name))
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        check_positive_int("d_ff", self.d_ff)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model, n_heads: d_model must be a multiple of n_heads, "
                             f"got d_model={self.d_model}, n_heads={self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")
        check_choice("norm", self.norm, NORMS)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict) -> "GPTConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"values: unknown {cls.__name__} fields {sorted(unknown)}; known are {sorted(known)}")
        return cls(**values)


class FeedForward(nn.Module):
    """Position-wise feed-forward layer: widen, GELU (tanh form, as GPT-2), narrow back, dropout.

    The non-linearity in the middle is the point: without it the two matrices are one matrix.
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff, bias=bias)
        self.act = nn.GELU(approximate="tanh")
        self.down = nn.Linear(d_ff, d_model, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.down(self.act(self.up(x))))


class Block(nn.Module):
    """One transformer block: (masked) self-attention, optional cross-attention, feed-forward.

    Each sub-layer f is wrapped the way `norm` and `skip` say:
    pre-norm  x + f(LN(x));  post-norm  LN(x + f(x));  none  x + f(x);  without skip the `x +` goes.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int | None = None, dropout: float = 0.0,
                 bias: bool = True, causal: bool = True, cross_attention: bool = False,
                 norm: str = "pre", skip: bool = True, layer_norm_eps: float = 1e-5):
        super().__init__()
        check_choice("norm", norm, NORMS)
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.norm_kind, self.skip = norm, skip
        self.attn = MultiHeadAttention(d_model, n_heads, causal=causal, dropout=dropout, bias=bias)
        self.attn_drop = nn.Dropout(dropout)
        self.norm1 = self._norm(d_model, layer_norm_eps)
        self.cross_attn = None
        if cross_attention:
            self.cross_attn = MultiHeadAttention(d_model, n_heads, causal=False, dropout=dropout, bias=bias)
            self.cross_drop = nn.Dropout(dropout)
            self.norm_cross = self._norm(d_model, layer_norm_eps)
        self.ff = FeedForward(d_model, d_ff, dropout, bias)
        self.norm2 = self._norm(d_model, layer_norm_eps)

    def _norm(self, d_model: int, eps: float) -> nn.Module:
        return nn.Identity() if self.norm_kind == "none" else nn.LayerNorm(d_model, eps=eps)

    def _sublayer(self, x: Tensor, norm: nn.Module, f) -> Tensor:
        if self.norm_kind == "pre":
            out = f(norm(x))
            return x + out if self.skip else out
        out = f(x)
        return norm(x + out if self.skip else out)  # post-norm (norm is Identity for "none")

    def forward(self, x: Tensor, context: Tensor | None = None, self_mask: Tensor | None = None,
                context_mask: Tensor | None = None, cache: KVCache | None = None) -> Tensor:
        """x: (batch, length, d_model); `context` (the encoder's output) feeds the cross-attention."""
        x = self._sublayer(x, self.norm1, lambda h: self.attn_drop(self.attn(h, mask=self_mask, cache=cache)))
        if self.cross_attn is not None:
            if context is None:
                raise ValueError("context: this block has cross-attention and needs the encoder's output, got None")
            x = self._sublayer(x, self.norm_cross,
                               lambda h: self.cross_drop(self.cross_attn(h, context=context, mask=context_mask)))
        return self._sublayer(x, self.norm2, self.ff)

    @torch.no_grad()
    def attention_weights(self, x: Tensor, self_mask: Tensor | None = None) -> Tensor:
        """The self-attention weights (batch, heads, queries, keys) this block uses on input `x`."""
        h = self.norm1(x) if self.norm_kind == "pre" else x
        return self.attn(h, mask=self_mask, need_weights=True)[1]


def _init_weights(module: nn.Module, n_layers: int) -> None:
    """GPT-2's initialisation: N(0, 0.02) everywhere, the projections into the residual stream
    scaled by 1/sqrt(2 n_layers) so the sum of many blocks does not grow with depth."""
    for name, sub in module.named_modules():
        if isinstance(sub, (nn.Linear, nn.Embedding)):
            std = 0.02 / math.sqrt(2 * n_layers) if name.endswith(("out_proj", "ff.down")) else 0.02
            nn.init.normal_(sub.weight, mean=0.0, std=std)
            if getattr(sub, "bias", None) is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.LayerNorm):
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)


def _check_ids(ids, vocab_size: int, name: str = "ids") -> None:
    check_type(name, ids, Tensor, "a torch.Tensor of token ids")
    if ids.dim() != 2:
        raise ValueError(f"{name}: expected shape (batch, length), got {tuple(ids.shape)}")
    if ids.dtype not in (torch.long, torch.int, torch.int16, torch.uint8, torch.int8):
        raise TypeError(f"{name}: expected integer token ids, got dtype {ids.dtype}")
    check_ids_below(name, ids, vocab_size)


class GPT(nn.Module):
    """A decoder-only transformer (GPT-2's layout): token + position embeddings, causal blocks,
    a final LayerNorm (pre-norm only) and a linear layer to one logit per vocabulary entry."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        check_type("config", config, GPTConfig)
        self.config = c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.context_length, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            Block(c.d_model, c.n_heads, c.d_ff, c.dropout, c.bias, causal=True, norm=c.norm, skip=c.skip,
                  layer_norm_eps=c.layer_norm_eps) for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps) if c.norm == "pre" else nn.Identity()
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        _init_weights(self, c.n_layers)
        if c.tie_weights:
            self.lm_head.weight = self.tok_emb.weight

    def num_parameters(self) -> int:
        """Parameters counted once (the tied output matrix is the embedding matrix)."""
        return sum(p.numel() for p in self.parameters())

    def new_cache(self) -> list[KVCache]:
        """One empty key/value cache per block, for `forward(ids, cache=...)` one token at a time."""
        return [KVCache() for _ in self.blocks]

    def hidden_states(self, ids: Tensor, cache: list[KVCache] | None = None) -> Tensor:
        """The final vectors (batch, length, d_model) before the output layer."""
        _check_ids(ids, self.config.vocab_size)
        past = len(cache[0]) if cache else 0
        length = ids.shape[1]
        if past + length > self.config.context_length:
            what = f"{past} cached + {length} new tokens = {past + length}" if past else f"sequence length {length}"
            raise ValueError(f"ids: {what} is longer than the context length {self.config.context_length} "
                             "(config.context_length); crop the input to its last context_length tokens")
        if cache is not None and len(cache) != len(self.blocks):
            raise ValueError(f"cache: expected one KVCache per block ({len(self.blocks)}), got {len(cache)}")
        positions = torch.arange(past, past + length, device=ids.device)
        x = self.drop(self.tok_emb(ids) + self.pos_emb(positions))
        for i, block in enumerate(self.blocks):
            x = block(x, cache=None if cache is None else cache[i])
        return self.norm(x)

    @torch.no_grad()
    def attention_weights(self, ids: Tensor) -> list[Tensor]:
        """Each block's attention weights (batch, heads, length, length), bottom block first: what
        every position looked at (dropout off)."""
        _check_ids(ids, self.config.vocab_size)
        if ids.shape[1] > self.config.context_length:
            raise ValueError(f"ids: sequence length {ids.shape[1]} is longer than the context length "
                             f"{self.config.context_length} (config.context_length)")
        was_training = self.training
        self.eval()
        x = self.tok_emb(ids) + self.pos_emb(torch.arange(ids.shape[1], device=ids.device))
        maps = []
        for block in self.blocks:
            maps.append(block.attention_weights(x))
            x = block(x)
        self.train(was_training)
        return maps

    def forward(self, ids: Tensor, cache: list[KVCache] | None = None, last_only: bool = False) -> Tensor:
        """ids: (batch, length) token ids → logits (batch, length, vocab_size) for the next token.

        With `cache` (from `new_cache()`), the keys and values of earlier positions are reused and
        `ids` holds only the new tokens. `last_only` computes the logits of the last position only
        (batch, 1, vocab_size): all that generation needs.
        """
        hidden = self.hidden_states(ids, cache)
        return self.lm_head(hidden[:, -1:] if last_only else hidden)

    def loss(self, ids: Tensor, targets: Tensor, ignore_index: int = -100) -> Tensor:
        """Mean cross-entropy of predicting `targets` (usually `ids` shifted by one) from `ids`."""
        logits = self(ids)
        if targets.shape != ids.shape:
            raise ValueError(f"targets: expected the shape of ids {tuple(ids.shape)}, got {tuple(targets.shape)}")
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=ignore_index)

    @property
    def context_length(self) -> int:
        """How many positions the model can see at once (its position table's length)."""
        return self.config.context_length

    def generate(self, ids: Tensor, max_new_tokens: int, temperature: float = 0.0, top_k: int | None = None,
                 use_cache: bool = True, generator: torch.Generator | None = None, eos_id: int | None = None,
                 top_p: float | None = None) -> Tensor:
        """Append `max_new_tokens` tokens to `ids` (batch, length), one at a time: `generation.generate`.

        temperature 0 (the default) is greedy (always the likeliest token); otherwise sample from
        softmax(logits / temperature), among the `top_k` likeliest / the top-p mass if given.
        """
        _check_ids(ids, self.config.vocab_size)
        return generation.generate(self, ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                   use_cache=use_cache, generator=generator, eos_id=eos_id)

    @classmethod
    def from_hf_gpt2(cls, hf_model) -> "GPT":
        """Our GPT with the weights of a Hugging Face `GPT2LMHeadModel` copied in.

        GPT-2 keeps q, k, v in one fused `c_attn` and stores its linear layers (`Conv1D`) as
        (in, out) matrices, the transpose of `nn.Linear`'s (out, in): both are undone here.
        """
        hf = hf_model.config
        if hf.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"hf_model: expected GPT-2's tanh GELU, got activation {hf.activation_function!r}")
        config = GPTConfig(vocab_size=hf.vocab_size, context_length=hf.n_positions, d_model=hf.n_embd,
                           n_layers=hf.n_layer, n_heads=hf.n_head, d_ff=hf.n_inner or 4 * hf.n_embd,
                           dropout=0.0, bias=True, norm="pre", skip=True, layer_norm_eps=hf.layer_norm_epsilon,
                           tie_weights=bool(getattr(hf, "tie_word_embeddings", True)))
        model = cls(config)
        model.load_state_dict(gpt2_state_dict_to_ours(hf_model.state_dict(), config))
        return model

    def to_hf_gpt2(self):
        """The same network as a Hugging Face `GPT2LMHeadModel` (our weights copied in), for models
        GPT-2 can express: pre-norm, skip connections, biases, tied embeddings."""
        from transformers import GPT2Config, GPT2LMHeadModel

        c = self.config
        if c.norm != "pre" or not c.skip or not c.bias or not c.tie_weights:
            raise ValueError("config: GPT-2 has pre-norm blocks with skip connections, biases and tied "
                             f"embeddings; got norm={c.norm!r}, skip={c.skip}, bias={c.bias}, tie_weights={c.tie_weights}")
        hf_config = GPT2Config(vocab_size=c.vocab_size, n_positions=c.context_length, n_embd=c.d_model,
                               n_layer=c.n_layers, n_head=c.n_heads, n_inner=c.d_ff, activation_function="gelu_new",
                               resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.dropout,
                               layer_norm_epsilon=c.layer_norm_eps, tie_word_embeddings=True,
                               bos_token_id=None, eos_token_id=None)  # GPT-2's 50256 is not in our vocabulary
        hf = GPT2LMHeadModel(hf_config)
        hf.load_state_dict(gpt2_state_dict_from_ours(self.state_dict(), c))
        return hf.eval()


def gpt2_state_dict_from_ours(state: dict[str, Tensor], config: GPTConfig) -> dict[str, Tensor]:
    """The inverse of `gpt2_state_dict_to_ours`: our names and shapes to `GPT2LMHeadModel`'s."""
    t = {"wte.weight": state["tok_emb.weight"], "wpe.weight": state["pos_emb.weight"],
         "ln_f.weight": state["norm.weight"], "ln_f.bias": state["norm.bias"]}
    for i in range(config.n_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        t[h + "attn.c_attn.weight"] = torch.cat([state[b + f"attn.{n}.weight"].t() for n in ("q_proj", "k_proj", "v_proj")], 1)
        t[h + "attn.c_attn.bias"] = torch.cat([state[b + f"attn.{n}.bias"] for n in ("q_proj", "k_proj", "v_proj")])
        for mine, theirs in {"attn.out_proj": "attn.c_proj", "ff.up": "mlp.c_fc", "ff.down": "mlp.c_proj"}.items():
            t[h + theirs + ".weight"] = state[b + mine + ".weight"].t()
            t[h + theirs + ".bias"] = state[b + mine + ".bias"]
        for mine, theirs in (("norm1", "ln_1"), ("norm2", "ln_2")):
            t[h + theirs + ".weight"] = state[b + mine + ".weight"]
            t[h + theirs + ".bias"] = state[b + mine + ".bias"]
    out = {"transformer." + k: v.detach().clone().contiguous() for k, v in t.items()}
    out["lm_head.weight"] = state["lm_head.weight"].detach().clone()
    return out


def gpt2_state_dict_to_ours(hf_state: dict[str, Tensor], config: GPTConfig) -> dict[str, Tensor]:
    """Rename and reshape a `GPT2LMHeadModel` state dict to `GPT`'s names (see `GPT.from_hf_gpt2`)."""
    t = {k.removeprefix("transformer."): v for k, v in hf_state.items()}
    d = config.d_model
    ours = {"tok_emb.weight": t["wte.weight"], "pos_emb.weight": t["wpe.weight"],
            "norm.weight": t["ln_f.weight"], "norm.bias": t["ln_f.bias"],
            "lm_head.weight": t.get("lm_head.weight", t["wte.weight"])}
    for i in range(config.n_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        w, bias = t[h + "attn.c_attn.weight"], t[h + "attn.c_attn.bias"]  # (d, 3d): q | k | v
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
            ours[b + f"attn.{name}.weight"] = w[:, j * d:(j + 1) * d].t()
            ours[b + f"attn.{name}.bias"] = bias[j * d:(j + 1) * d]
        pairs = {"attn.out_proj": "attn.c_proj", "ff.up": "mlp.c_fc", "ff.down": "mlp.c_proj"}
        for mine, theirs in pairs.items():
            ours[b + mine + ".weight"] = t[h + theirs + ".weight"].t()
            ours[b + mine + ".bias"] = t[h + theirs + ".bias"]
        for mine, theirs in (("norm1", "ln_1"), ("norm2", "ln_2")):
            ours[b + mine + ".weight"] = t[h + theirs + ".weight"]
            ours[b + mine + ".bias"] = t[h + theirs + ".bias"]
    return {k: v.detach().clone().contiguous() for k, v in ours.items()}
