"""Quantization from scratch: store weights in 8 or 4 bits and compute with them.

Notebook 11 builds it. `absmax_quantize` and `zeropoint_quantize` map floats to small integers, one
scale per tensor, per output channel (row) or per group of columns; `pack_int4` puts two 4-bit codes in
one byte; `Int8Linear` and `Int4Linear` replace `nn.Linear` with layers that keep only the integer codes
and run torch's own weight-only int8 / int4 matmul kernels on the CPU. (The benchmarks' measuring tools,
process memory, file sizes and speeds, are in benchmarks/measure.py.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BITS = (4, 8)
GRANULARITIES = ("tensor", "channel", "group")
INT4_KERNEL_GROUP_SIZES = (32, 64, 128, 256)  # what torch's CPU int4 kernel accepts


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or bits not in BITS:
        raise ValueError(f"bits: expected one of {BITS}, got {bits!r}")
    return bits


def _grouped(x: Tensor, granularity: str, group_size: int | None) -> Tensor:
    """View `x` as (rows, groups, values per group): one scale is computed per (row, group)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity: expected one of {GRANULARITIES}, got {granularity!r}")
    if granularity == "tensor":
        return x.reshape(1, 1, -1)
    if x.dim() != 2:
        raise ValueError(f"x: per-{granularity} quantization expects a 2-D weight (out_features, in_features), "
                         f"got shape {tuple(x.shape)}")
    if granularity == "channel":
        return x.reshape(x.shape[0], 1, x.shape[1])
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size: expected a positive int for granularity='group', got {group_size!r}")
    if x.shape[1] % group_size:
        raise ValueError(f"group_size: must divide the row length {x.shape[1]} of x (shape {tuple(x.shape)}), "
                         f"got {group_size}")
    return x.reshape(x.shape[0], x.shape[1] // group_size, group_size)


@dataclass
class Quantized:
    """Integer codes plus what it takes to turn them back into floats: x ≈ (q - zero_point) · scale.

    `scale` and `zero_point` have shape (rows, groups, 1), one per group of `q` viewed the same way.
    """

    q: Tensor  # int8 codes (absmax, signed) or uint8 codes (zero-point, unsigned), one per value
    scale: Tensor
    zero_point: Tensor | None
    bits: int
    shape: torch.Size
    granularity: str
    group_size: int | None

    def dequantize(self) -> Tensor:
        """Floats back from the codes (what a kernel computes on the fly)."""
        q = _grouped(self.q.float().reshape(self.shape), self.granularity, self.group_size)
        if self.zero_point is not None:
            q = q - self.zero_point
        return (q * self.scale).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        """Storage at `bits` per code (4-bit codes packed two per byte) plus the scales and zero points."""
        codes = math.ceil(self.q.numel() * self.bits / 8)
        extra = self.scale.numel() * self.scale.element_size()
        if self.zero_point is not None:
            extra += self.zero_point.numel() * self.zero_point.element_size()
        return codes + extra


def absmax_quantize(x: Tensor, bits: int = 8, granularity: str = "tensor", group_size: int | None = None) -> Quantized:
    """Symmetric quantization: scale = max|x| / (2^(bits-1) - 1), q = round(x / scale), so 0 maps to 0."""
    _check_bits(bits)
    groups = _grouped(x, granularity, group_size).float()
    qmax = 2 ** (bits - 1) - 1  # 127 or 7: the range stays symmetric around 0
    scale = (groups.abs().amax(dim=-1, keepdim=True) / qmax).clamp(min=1e-12)
    q = (groups / scale).round().clamp(-qmax, qmax).to(torch.int8)
    return Quantized(q.reshape(x.shape), scale, None, bits, x.shape, granularity, group_size)


def zeropoint_quantize(x: Tensor, bits: int = 8, granularity: str = "tensor",
                       group_size: int | None = None) -> Quantized:
    """Asymmetric quantization: [min, max] (widened to hold 0) is spread over 0 … 2^bits - 1.

    The integer zero point is the code that stands for 0.0, so no code is wasted on a one-sided range.
    """
    _check_bits(bits)
    groups = _grouped(x, granularity, group_size).float()
    qmax = 2**bits - 1  # 255 or 15
    low = groups.amin(dim=-1, keepdim=True).clamp(max=0)
    high = groups.amax(dim=-1, keepdim=True).clamp(min=0)
    scale = ((high - low) / qmax).clamp(min=1e-12)
    zero_point = (-low / scale).round().clamp(0, qmax)
    q = ((groups / scale).round() + zero_point).clamp(0, qmax).to(torch.uint8)
    return Quantized(q.reshape(x.shape), scale, zero_point, bits, x.shape, granularity, group_size)


def pack_int4(codes: Tensor) -> Tensor:
    """Two 4-bit codes (0 … 15) per byte along the last dimension: even index low nibble, odd index high."""
    if not isinstance(codes, Tensor):
        raise TypeError(f"codes: expected a torch.Tensor, got {type(codes).__name__}")
    if codes.is_floating_point() or codes.dtype == torch.bool:
        raise TypeError(f"codes: expected an integer tensor, got dtype {codes.dtype}")
    if codes.dim() == 0 or codes.shape[-1] % 2:
        raise ValueError(f"codes: expected an even-length last dimension, got shape {tuple(codes.shape)}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > 15):
        raise ValueError(f"codes: expected values in 0..15, got min {int(codes.min())}, max {int(codes.max())}")
    codes = codes.to(torch.uint8)
    return codes[..., 0::2] | (codes[..., 1::2] << 4)


def unpack_int4(packed: Tensor) -> Tensor:
    """The inverse of `pack_int4`: each byte gives back its two codes, low nibble first."""
    if not isinstance(packed, Tensor) or packed.dtype != torch.uint8:
        raise TypeError(f"packed: expected a torch.uint8 tensor, got {getattr(packed, 'dtype', type(packed).__name__)}")
    low, high = packed & 0x0F, packed >> 4
    return torch.stack([low, high], dim=-1).reshape(*packed.shape[:-1], packed.shape[-1] * 2)


def _check_width(x: Tensor, in_features: int) -> None:
    if not isinstance(x, Tensor) or x.dim() == 0 or x.shape[-1] != in_features:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x: expected last dimension in_features={in_features}, got shape {shape}")


class Int8Linear(nn.Module):
    """A linear layer whose weight is int8 with one absmax scale per output channel (weight-only int8).

    The matmul is torch's `_weight_int8pack_mm`, which reads the int8 weight and scales as it goes; like
    the int4 kernel it is fast with bf16 activations, so the input is cast to bf16 and the output back.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear: expected an nn.Linear, got {type(linear).__name__}")
        quantized = absmax_quantize(linear.weight.detach(), bits=8, granularity="channel")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", quantized.q.contiguous())
        self.register_buffer("scale", quantized.scale.reshape(-1).to(torch.bfloat16))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        _check_width(x, self.in_features)
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        if flat.device.type in ("cpu", "mps"):  # where torch has the int8 kernel
            out = torch.ops.aten._weight_int8pack_mm(flat, self.weight_int8, self.scale)
        else:  # e.g. CUDA: the same numbers, computed from the dequantized weight (no speed-up)
            out = flat @ (self.weight_int8.to(torch.bfloat16) * self.scale[:, None]).T
        out = out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bits=8, per-channel"


class Int4Linear(nn.Module):
    """A linear layer with 4-bit group-wise weights, run by torch's CPU int4 kernel.

    On another device (a GPU) the layer still computes the same numbers, from a bf16 copy of its
    dequantized weight made once: correct, but it saves no memory there (torchao's GPU kernels do).

    Each group of `group_size` weights of a row keeps its min and its step: w ≈ min + q · step, q in 0 … 15
    (the float-offset cousin of an integer zero point, the layout of GPTQ and llama.cpp's Q4_1). The
    kernel wants its own packed layout (`_convert_weight_to_int4pack_for_cpu`, still two codes per byte),
    bf16 activations, and per group a bf16 (step, offset) pair with w = (q - 8) · step + offset.
    """

    def __init__(self, linear: nn.Linear, group_size: int = 32):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear: expected an nn.Linear, got {type(linear).__name__}")
        if group_size not in INT4_KERNEL_GROUP_SIZES:
            raise ValueError(f"group_size: torch's int4 kernel takes one of {INT4_KERNEL_GROUP_SIZES}, got {group_size!r}")
        if linear.out_features % 16:
            raise ValueError(f"linear: torch's int4 kernel needs out_features divisible by 16, got {linear.out_features}")
        groups = _grouped(linear.weight.detach().float(), "group", group_size)  # (out, groups, group_size)
        low, high = groups.amin(dim=-1, keepdim=True), groups.amax(dim=-1, keepdim=True)
        step = ((high - low) / 15).clamp(min=1e-12)
        codes = ((groups - low) / step).round().clamp(0, 15).to(torch.int32).reshape(linear.weight.shape)
        self.in_features, self.out_features, self.group_size = linear.in_features, linear.out_features, group_size
        self.register_buffer("weight_int4", torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 2))
        scales_and_zeros = torch.cat([step, low + 8 * step], dim=-1).transpose(0, 1).contiguous()  # (groups, out, 2)
        self.register_buffer("scales_and_zeros", scales_and_zeros.to(torch.bfloat16))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self._off_cpu_weight: Tensor | None = None  # the bf16 copy used off the CPU (not saved)

    def dequantized_weight(self) -> Tensor:
        """The float weight the kernel effectively multiplies by (for checking it), on the layer's device."""
        eye = torch.eye(self.in_features, dtype=torch.bfloat16)
        weight = torch.ops.aten._weight_int4pack_mm_for_cpu(eye, self.weight_int4.cpu(), self.group_size,
                                                            self.scales_and_zeros.cpu()).float().T
        return weight.to(self.weight_int4.device)

    def forward(self, x: Tensor) -> Tensor:
        _check_width(x, self.in_features)
        flat = x.reshape(-1, self.in_features).to(torch.bfloat16)
        if flat.device.type == "cpu":
            out = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.weight_int4, self.group_size,
                                                             self.scales_and_zeros)
        else:  # the kernel's packed layout is CPU-only: multiply by the dequantized weight instead
            if self._off_cpu_weight is None or self._off_cpu_weight.device != flat.device:
                self._off_cpu_weight = self.dequantized_weight().to(flat.device, torch.bfloat16)
            out = flat @ self._off_cpu_weight.T
        out = out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bits=4, "
                f"group_size={self.group_size}")


def quantize_linears(model: nn.Module, bits: int = 8, group_size: int = 32,
                     skip: tuple[str, ...] = ("lm_head",)) -> int:
    """Replace every `nn.Linear` of `model` (in place) by `Int8Linear` or `Int4Linear`; returns how many.

    Layers whose name contains a word of `skip` stay as they are (the output head shares its weight with
    the embeddings in tied models, so quantizing it would store that matrix twice).
    """
    _check_bits(bits)
    targets = [(name, module) for name, module in model.named_modules()
               if isinstance(module, nn.Linear) and not any(word in name for word in skip)]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Int8Linear(module) if bits == 8 else Int4Linear(module, group_size))
    return len(targets)


def _plain_tensors(name: str, tensor: Tensor):
    """(name, tensor) pairs of plain tensors: a tensor subclass (torchao's Int8Tensor keeps `qdata`,
    `scale`, ...) is opened up into the tensors it really stores."""
    flatten = getattr(type(tensor), "__tensor_flatten__", None)
    if flatten is None:
        yield name, tensor
        return
    inner_names, _ = tensor.__tensor_flatten__()
    for inner in inner_names:
        yield from _plain_tensors(f"{name}.{inner}", getattr(tensor, inner))


def _unique_tensors(named) -> dict[str, Tensor]:
    """Plain tensors by name, a storage shared by two names (tied embeddings) kept once."""
    seen, out = set(), {}
    for name, tensor in named:
        for inner_name, inner in _plain_tensors(name, tensor):
            key = (inner.untyped_storage().data_ptr(), inner.storage_offset(), inner.shape)
            if key not in seen:
                seen.add(key)
                out[inner_name] = inner
    return out


def weight_bytes(model: nn.Module) -> int:
    """Bytes of all parameters and buffers, a tensor shared by two modules (tied embeddings) counted once."""
    tensors = _unique_tensors([*model.named_parameters(), *model.named_buffers()])
    return sum(t.numel() * t.element_size() for t in tensors.values())


def perplexity_from_logits(logits: Tensor, ids: Tensor) -> float:
    """exp(mean negative log-likelihood) of ids[1:] given the logits at positions 0 … T-2.

    logits: (T, vocab) for one sequence of token ids (T,). Any model (torch or llama.cpp) gives these.
    """
    logits = torch.as_tensor(logits).float()
    ids = torch.as_tensor(ids).long().reshape(-1)
    if logits.dim() != 2 or logits.shape[0] != ids.shape[0]:
        raise ValueError(f"logits: expected shape (T={ids.shape[0]}, vocab), got {tuple(logits.shape)}")
    if ids.shape[0] < 2:
        raise ValueError(f"ids: expected at least 2 tokens, got {ids.shape[0]}")
    return math.exp(F.cross_entropy(logits[:-1], ids[1:]).item())


__all__ = ["BITS", "GRANULARITIES", "INT4_KERNEL_GROUP_SIZES", "Quantized", "absmax_quantize", "zeropoint_quantize",
           "pack_int4", "unpack_int4", "Int8Linear", "Int4Linear", "quantize_linears", "weight_bytes",
           "perplexity_from_logits"]
