"""Attention from scratch: softmax, scaled dot-product attention, one head, many heads.

Notebook 03 builds `softmax` and `scaled_dot_product_attention` (a soft dictionary lookup),
notebook 04 the learned `AttentionHead`, notebook 06 `MultiHeadAttention` (causal, with a KV cache
used from notebook 07 on). Each is checked against torch's own implementation in tests/test_attention.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.validation import check_non_negative_int, check_positive_int, check_type


def _require_tensor(name: str, value) -> None:  # kept by this name: notebook 03 shows softmax's source
    check_type(name, value, Tensor, "a torch.Tensor")


def softmax(x: Tensor, dim: int = -1, temperature: float = 1.0) -> Tensor:
    """exp(x / T) normalised to sum to 1 along `dim` (notebook 03).

    The row's max is subtracted first so exp never overflows; the result is the same because
    softmax(x) = softmax(x - c) for any constant c. Low T sharpens, high T flattens.
    """
    _require_tensor("x", x)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
    scaled = x / temperature
    shifted = scaled - scaled.amax(dim=dim, keepdim=True)
    exp = shifted.exp()
    return exp / exp.sum(dim=dim, keepdim=True)


def causal_mask(n_queries: int, n_keys: int | None = None, device=None) -> Tensor:
    """Boolean (n_queries, n_keys) mask, True where a query may look: at its own and earlier positions.

    With a KV cache the queries are the last `n_queries` of `n_keys` positions, hence the offset.
    """
    n_keys = n_queries if n_keys is None else n_keys
    check_non_negative_int("n_queries", n_queries)
    check_non_negative_int("n_keys", n_keys)
    if n_keys < n_queries:
        raise ValueError(f"n_keys: expected at least n_queries={n_queries}, got {n_keys}")
    return torch.ones(n_queries, n_keys, dtype=torch.bool, device=device).tril(diagonal=n_keys - n_queries)


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        _require_tensor(name, t)
        if t.dim() < 2:
            raise ValueError(f"{name}: expected at least 2 dimensions (..., length, features), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if not q.dim() == k.dim() == v.dim():
        raise ValueError(f"q, k, v: expected the same number of dimensions, got shapes {shapes}")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k, v: expected one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q, k: the last dimensions must match (a query is compared with each key), got {shapes}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k, v: expected as many keys as values (dimension -2), got {shapes}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(f"q, k, v: the leading (batch, head) dimensions do not broadcast, got {shapes}") from None


def _check_mask(mask, scores_shape: torch.Size) -> None:
    check_type("mask", mask, Tensor, "a torch.Tensor (bool: True = may attend; float: added to scores)")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"mask: expected dtype bool (True = may attend) or a float dtype (added to the scores), "
                        f"got {mask.dtype}; a 0/1 integer mask would be added, not applied: use mask.bool()")
    try:
        fits = torch.broadcast_shapes(mask.shape, scores_shape) == scores_shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask: shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                         f"{tuple(scores_shape)} (..., queries, keys)")


def _apply_mask(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Boolean mask: False → -inf (that key is hidden). Float mask: added to the scores."""
    if mask is None:
        return scores
    _check_mask(mask, scores.shape)
    if mask.dtype == torch.bool:
        return scores.masked_fill(~mask, float("-inf"))
    return scores + mask


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / √d_k) v, returning `(output, weights)` (notebook 03).

    q: (..., Lq, d_k), k: (..., Lk, d_k), v: (..., Lk, d_v). `mask` broadcasts to (..., Lq, Lk):
    boolean (True = may attend, as in torch) or additive (0 or -inf added to the scores).
    A query that may attend to no key at all gets zero weights and a zero output, as in torch.
    """
    _check_qkv(q, k, v)
    scores = _apply_mask(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), mask)
    if mask is None:
        weights = softmax(scores, dim=-1)
    else:  # a row that is all -inf would give 0/0 = NaN: give it zero weights instead
        blind = scores.amax(dim=-1, keepdim=True) == float("-inf")
        weights = softmax(scores.masked_fill(blind, 0.0), dim=-1).masked_fill(blind, 0.0)
    return weights @ v, weights


class AttentionHead(nn.Module):
    """One attention head (notebook 04): learned projections W_q, W_k, W_v from d_model to d_head,
    then scaled dot-product attention. Returns `(output, weights)`."""

    def __init__(self, d_model: int, d_head: int, bias: bool = False):
        super().__init__()
        check_positive_int("d_model", d_model)
        check_positive_int("d_head", d_head)
        self.q_proj = nn.Linear(d_model, d_head, bias=bias)
        self.k_proj = nn.Linear(d_model, d_head, bias=bias)
        self.v_proj = nn.Linear(d_model, d_head, bias=bias)

    def forward(self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Queries from `x` (..., Lq, d_model); keys and values from `context` (default: `x`, self-attention)."""
        context = x if context is None else context
        expected = self.q_proj.in_features
        for name, t in (("x", x), ("context", context)):
            _require_tensor(name, t)
            if t.dim() < 2 or t.shape[-1] != expected:
                raise ValueError(f"{name}: expected shape (..., length, d_model={expected}), got {tuple(t.shape)}")
        return scaled_dot_product_attention(self.q_proj(x), self.k_proj(context), self.v_proj(context), mask)


class KVCache:
    """Keys and values of the positions already seen, so generation computes each token's k, v once.

    `k` and `v` (batch, heads, positions, d_head) are views into buffers with room to spare, which
    double when full: appending a token copies only that token, not the whole cache again.
    """

    def __init__(self):
        self._k: Tensor | None = None
        self._v: Tensor | None = None
        self._length = 0

    @property
    def k(self) -> Tensor | None:
        return None if self._k is None else self._k[..., :self._length, :]

    @property
    def v(self) -> Tensor | None:
        return None if self._v is None else self._v[..., :self._length, :]

    def __len__(self) -> int:
        return self._length

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append the new positions' k, v (batch, heads, new, d_head); return all of them."""
        _require_tensor("k", k)
        _require_tensor("v", v)
        if k.shape[:-1] != v.shape[:-1]:
            raise ValueError(f"k, v: expected the same (batch, heads, new) dimensions, got {tuple(k.shape)} and {tuple(v.shape)}")
        if self._k is not None and (k.shape[:-2] != self._k.shape[:-2] or k.shape[-1] != self._k.shape[-1]
                                    or v.shape[-1] != self._v.shape[-1]):
            raise ValueError(f"k: expected (batch, heads, new, d_head) matching the cached {tuple(self.k.shape)}, "
                             f"got {tuple(k.shape)}")
        end = self._length + k.shape[-2]
        if self._k is None or end > self._k.shape[-2]:  # no room left: twice the room, keep what is there
            room = max(end, 2 * (0 if self._k is None else self._k.shape[-2]), 16)
            grown_k = k.new_empty(*k.shape[:-2], room, k.shape[-1])
            grown_v = v.new_empty(*v.shape[:-2], room, v.shape[-1])
            if self._length:
                grown_k[..., :self._length, :] = self.k
                grown_v[..., :self._length, :] = self.v
            self._k, self._v = grown_k, grown_v
        self._k[..., self._length:end, :] = k
        self._v[..., self._length:end, :] = v
        self._length = end
        return self.k, self.v


class MultiHeadAttention(nn.Module):
    """n_heads heads of size d_model / n_heads computed as one batched operation, then mixed by W_o.

    `causal=True` lets each position attend only to itself and earlier positions (a GPT decoder).
    Built for notebook 06; the KV cache is used for generation from notebook 07 on.
    """

    def __init__(self, d_model: int, n_heads: int, causal: bool = False, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if (isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads < 1
                or isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1 or d_model % n_heads):
            raise ValueError(f"d_model, n_heads: d_model must be a positive multiple of n_heads, "
                             f"got d_model={d_model!r}, n_heads={n_heads!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.causal, self.dropout = causal, dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _split(self, t: Tensor) -> Tensor:  # (B, L, d_model) -> (B, heads, L, d_head)
        return t.view(t.shape[0], t.shape[1], self.n_heads, self.d_head).transpose(1, 2)

    def forward(self, x: Tensor, context: Tensor | None = None, mask: Tensor | None = None,
                cache: KVCache | None = None, need_weights: bool = False):
        """x: (batch, length, d_model). Returns the output, or `(output, weights)` if `need_weights`.

        `mask` broadcasts to (batch, heads, queries, keys), e.g. a padding mask as (batch, 1, 1, keys).
        With `cache`, self-attention appends the new positions' keys and values; cross-attention
        (`context` given) fills the cache from `context` once and reuses it afterwards.
        `need_weights=True` runs our `scaled_dot_product_attention` (to look at the weights);
        otherwise torch's fused kernel, which notebook 06 shows computes the same thing faster.
        """
        _require_tensor("x", x)
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x: expected shape (batch, length, d_model={self.d_model}), got {tuple(x.shape)}")
        if context is not None:
            _require_tensor("context", context)
            if context.dim() != 3 or context.shape[-1] != self.d_model or context.shape[0] != x.shape[0]:
                raise ValueError(f"context: expected shape (batch={x.shape[0]}, length, d_model={self.d_model}), "
                                 f"got {tuple(context.shape)}")
        if cache is not None:
            check_type("cache", cache, KVCache, "a KVCache or None")
        q = self._split(self.q_proj(x))
        if context is not None and cache is not None and len(cache):
            k, v = cache.k, cache.v  # cross-attention: the context's keys and values never change
        else:
            source = x if context is None else context
            k, v = self._split(self.k_proj(source)), self._split(self.v_proj(source))
            if cache is not None:
                k, v = cache.update(k, v)
        return self._attend(x, q, k, v, mask, need_weights)

    def _attend(self, x: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, need_weights: bool):
        if mask is not None:  # checked here: the fused kernel's own errors do not name the shapes
            _check_mask(mask, q.shape[:-1] + (k.shape[-2],))
        plain_causal = self.causal and mask is None and q.shape[-2] == k.shape[-2] and not need_weights
        if plain_causal or (self.causal and mask is None and q.shape[-2] == 1):
            pass  # the kernel masks by itself (is_causal); one new query (generation) may look at every key
        elif self.causal:
            causal = causal_mask(q.shape[-2], k.shape[-2], device=x.device)
            if mask is None:
                mask = causal
            elif mask.dtype == torch.bool:
                mask = mask & causal
            else:
                mask = mask.masked_fill(~causal, float("-inf"))
        dropout = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask)
            if dropout:  # dropout acts on the attention weights, as in torch
                out = F.dropout(weights, dropout, training=True) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if plain_causal else mask,
                                                 dropout_p=dropout, is_causal=plain_causal)
        # n_heads · d_head, not d_model: a tensor-parallel rank (notebook 11) sets n_heads to the heads it holds
        out = self.out_proj(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.n_heads * self.d_head))
        return (out, weights) if need_weights else out
