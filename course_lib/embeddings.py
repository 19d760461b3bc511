"""Embeddings: a token's vector is a row of a matrix, picked by a one-hot vector; positions get vectors too.

Notebook 05 builds these. `TokenEmbedding` is notebook 02's one-hot times a matrix, written out
(it equals `torch.nn.Embedding`, which skips the multiplication and reads the row). Attention
treats its input as a set, so word order must be added: `LearnedPositionalEmbedding` learns one
vector per position, `SinusoidalPositionalEmbedding` uses the fixed sines and cosines of
"Attention Is All You Need" (Vaswani et al., 2017). Notebook 07's GPT adds them to the token vectors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.validation import check_ids_below, check_positive_int, check_type


def _check_ids(ids: Tensor, vocab_size: int) -> None:
    check_type("ids", ids, Tensor, "a torch.Tensor of token ids")
    if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.is_complex():
        raise TypeError(f"ids: expected an integer tensor (torch.long), got dtype {ids.dtype}")
    check_ids_below("ids", ids, vocab_size)


def one_hot_embed(ids: Tensor, weight: Tensor) -> Tensor:
    """Embed token ids as notebook 02 would: one-hot rows (..., vocab) times the (vocab, d) matrix."""
    if not isinstance(weight, Tensor) or weight.dim() != 2:
        raise ValueError(f"weight: expected a (vocab_size, d_model) tensor, got {getattr(weight, 'shape', type(weight).__name__)}")
    _check_ids(ids, weight.shape[0])
    return F.one_hot(ids, weight.shape[0]).to(weight.dtype) @ weight


class TokenEmbedding(nn.Module):
    """A (vocab_size, d_model) matrix whose row i is token i's vector, learned or fixed (`trainable`)."""

    def __init__(self, vocab_size: int, d_model: int, trainable: bool = True):
        super().__init__()
        check_positive_int("vocab_size", vocab_size)
        check_positive_int("d_model", d_model)
        self.weight = nn.Parameter(torch.randn(vocab_size, d_model), requires_grad=trainable)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (...,) -> vectors (..., d_model), computed as one_hot(ids) @ weight."""
        return one_hot_embed(ids, self.weight)


def sinusoidal_positions(n_positions: int, d_model: int, base: float = 10_000.0) -> Tensor:
    """The fixed (n_positions, d_model) table of Vaswani et al.: even columns sin(p / base^(2i/d)), odd cos.

    Each pair of columns turns at its own speed, like the hands of a clock, so nearby positions get
    similar vectors and a shift by k positions is the same rotation wherever it starts.
    """
    check_positive_int("n_positions", n_positions)
    check_positive_int("d_model", d_model)
    if d_model % 2:
        raise ValueError(f"d_model: expected an even size (sin and cos columns come in pairs), got {d_model}")
    position = torch.arange(n_positions, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(base) / d_model))
    table = torch.zeros(n_positions, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


class _PositionalEmbedding(nn.Module):
    max_positions: int

    def positions(self, length: int) -> Tensor:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (batch, length, d_model) plus the vectors of positions offset .. offset + length - 1."""
        if not isinstance(x, Tensor) or x.dim() != 3:
            raise ValueError(f"x: expected a (batch, length, d_model) tensor, got {getattr(x, 'shape', type(x).__name__)}")
        if offset + x.shape[1] > self.max_positions:
            raise ValueError(f"x: {x.shape[1]} positions from offset {offset} exceed max_positions={self.max_positions}")
        table = self.positions(offset + x.shape[1])[offset:]
        if table.shape[-1] != x.shape[-1]:
            raise ValueError(f"x: expected last dimension d_model={table.shape[-1]}, got shape {tuple(x.shape)}")
        return x + table.to(x.dtype)


class LearnedPositionalEmbedding(_PositionalEmbedding):
    """One learned vector per position (GPT-2 style), up to `max_positions`."""

    def __init__(self, max_positions: int, d_model: int):
        super().__init__()
        check_positive_int("max_positions", max_positions)
        check_positive_int("d_model", d_model)
        self.max_positions = max_positions
        self.weight = nn.Parameter(torch.randn(max_positions, d_model) * 0.02)

    def positions(self, length: int) -> Tensor:
        return self.weight[:length]


class SinusoidalPositionalEmbedding(_PositionalEmbedding):
    """The fixed sinusoidal positions (no parameters), kept as a buffer so it follows `.to(device)`."""

    def __init__(self, max_positions: int, d_model: int, base: float = 10_000.0):
        super().__init__()
        self.max_positions = max_positions
        self.register_buffer("table", sinusoidal_positions(max_positions, d_model, base), persistent=False)

    def positions(self, length: int) -> Tensor:
        return self.table[:length]


def smollm2_token_embeddings(ids: list[int] | None = None) -> Tensor:
    """Rows of SmolLM2-135M's token-embedding matrix (49,152 x 576), read straight from its GGUF file.

    The same numbers as `load_smollm2()[0].get_input_embeddings().weight[ids]`, without building the
    model: the matrix is stored 8-bit (Q8_0, blocks of 32 values sharing a scale) and only the rows
    asked for are de-quantized. Notebook 05 maps a few words' vectors in 2-D.
    """
    import gguf
    from gguf.quants import dequantize

    from course_lib.pretrained import smollm2_gguf_path

    reader = gguf.GGUFReader(str(smollm2_gguf_path()))
    tensor = next(t for t in reader.tensors if t.name == "token_embd.weight")
    rows = tensor.data
    if ids is not None:
        if isinstance(ids, (str, bytes)) or not all(isinstance(i, int) and 0 <= i < rows.shape[0] for i in ids):
            raise ValueError(f"ids: expected a list of token ids in [0, {rows.shape[0]}), got {ids!r}")
        rows = rows[list(ids)]
    return torch.from_numpy(dequantize(rows, tensor.tensor_type).copy()).float()
