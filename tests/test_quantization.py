"""course_lib.quantization: codes equal torch's own quantizers, round trips stay within half a step,
int4 packing is lossless, and the int8 / int4 layers compute what their dequantized weights say."""

import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_lib import quantization as Q

ROOT = Path(__file__).resolve().parent.parent


def load_measure():
    """benchmarks/measure.py, the benchmarks' measuring tools (not part of course_lib), imported by path."""
    spec = importlib.util.spec_from_file_location("bench_measure", ROOT / "benchmarks" / "measure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


measure = load_measure()


def weights(rows=64, cols=96, seed=0):
    """Rows of very different sizes, as real weight matrices have."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g) * torch.rand(rows, 1, generator=g) * 3


def torch_quantize(x, scale, zero_point, dtype, axis=None):
    with warnings.catch_warnings():  # torch deprecates its quantized tensors but still computes them
        warnings.simplefilter("ignore")
        if axis is None:
            return torch.quantize_per_tensor(x, float(scale), int(zero_point), dtype).int_repr()
        return torch.quantize_per_channel(x, scale.reshape(-1).double(), zero_point.reshape(-1).long(),
                                          axis, dtype).int_repr()


def test_absmax_int8_codes_equal_torch_quantize_per_tensor_and_per_channel():
    x = weights()
    per_tensor = Q.absmax_quantize(x, bits=8)
    assert torch.equal(per_tensor.q, torch_quantize(x, per_tensor.scale, 0, torch.qint8))
    per_channel = Q.absmax_quantize(x, bits=8, granularity="channel")
    zeros = torch.zeros(x.shape[0])
    assert torch.equal(per_channel.q, torch_quantize(x, per_channel.scale, zeros, torch.qint8, axis=0))


def test_zeropoint_int8_codes_equal_torch_quint8():
    x = weights() + 0.5
    per_tensor = Q.zeropoint_quantize(x, bits=8)
    assert torch.equal(per_tensor.q, torch_quantize(x, per_tensor.scale, per_tensor.zero_point, torch.quint8))
    per_channel = Q.zeropoint_quantize(x, bits=8, granularity="channel")
    assert torch.equal(per_channel.q, torch_quantize(x, per_channel.scale, per_channel.zero_point,
                                                     torch.quint8, axis=0))


@pytest.mark.parametrize("method", [Q.absmax_quantize, Q.zeropoint_quantize])
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("granularity, group_size", [("tensor", None), ("channel", None), ("group", 32)])
def test_round_trip_error_is_at_most_half_a_step(method, bits, granularity, group_size):
    x = weights()
    quantized = method(x, bits=bits, granularity=granularity, group_size=group_size)
    groups = Q._grouped(x, granularity, group_size)
    error = (Q._grouped(quantized.dequantize(), granularity, group_size) - groups).abs()
    assert torch.all(error <= quantized.scale / 2 * (1 + 1e-5) + 1e-7)
    low, high = (-(2 ** (bits - 1)) + 1, 2 ** (bits - 1) - 1) if method is Q.absmax_quantize else (0, 2**bits - 1)
    assert int(quantized.q.min()) >= low and int(quantized.q.max()) <= high


def test_zero_survives_zero_point_quantization_exactly():
    x = torch.tensor([[0.0, 0.3, 1.7, 2.0], [0.0, -1.0, 5.0, 0.25]])
    for granularity in ("tensor", "channel"):
        back = Q.zeropoint_quantize(x, bits=8, granularity=granularity).dequantize()
        assert torch.all(back[:, 0] == 0.0)


def test_finer_scales_give_smaller_errors():
    x = weights(seed=1)
    errors = [(q.dequantize() - x).pow(2).mean().item() for q in (
        Q.absmax_quantize(x, 4, "tensor"), Q.absmax_quantize(x, 4, "channel"),
        Q.absmax_quantize(x, 4, "group", group_size=32))]
    assert errors[0] > errors[1] > errors[2]


def test_storage_counts_four_bit_codes_as_half_a_byte():
    x = weights()
    eight, four = Q.absmax_quantize(x, 8, "channel"), Q.absmax_quantize(x, 4, "channel")
    assert eight.nbytes == x.numel() + 64 * 4
    assert four.nbytes == x.numel() // 2 + 64 * 4


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 15), min_size=2, max_size=64).filter(lambda v: len(v) % 2 == 0))
def test_pack_then_unpack_is_the_identity(values):
    codes = torch.tensor(values, dtype=torch.uint8)
    packed = Q.pack_int4(codes)
    assert packed.dtype == torch.uint8 and packed.numel() == codes.numel() // 2
    assert torch.equal(Q.unpack_int4(packed), codes)
    reference = np.array(values[0::2]) + 16 * np.array(values[1::2])  # low nibble first
    assert packed.tolist() == reference.tolist()


def test_pack_works_row_by_row_on_a_matrix():
    codes = torch.randint(0, 16, (5, 8), generator=torch.Generator().manual_seed(0))
    packed = Q.pack_int4(codes)
    assert packed.shape == (5, 4)
    assert torch.equal(Q.unpack_int4(packed), codes.to(torch.uint8))


def test_int8_linear_computes_with_its_dequantized_weight():
    torch.manual_seed(0)
    linear = nn.Linear(96, 48)
    layer = Q.Int8Linear(linear)
    x = torch.randn(3, 7, 96)
    weight = layer.weight_int8.float() * layer.scale.float()[:, None]
    expected = F.linear(x.bfloat16().float(), weight, linear.bias)
    out = layer(x)
    assert out.shape == (3, 7, 48) and out.dtype == torch.float32
    assert torch.allclose(out, expected, atol=0.05, rtol=0.02)
    assert torch.allclose(out, linear(x), atol=0.1)


def test_int4_linear_computes_with_min_plus_code_times_step_weights():
    torch.manual_seed(0)
    linear = nn.Linear(128, 64)
    layer = Q.Int4Linear(linear, group_size=32)
    groups = linear.weight.detach().reshape(64, 4, 32)
    low, step = groups.amin(-1, keepdim=True), (groups.amax(-1, keepdim=True) - groups.amin(-1, keepdim=True)) / 15
    dequantized = (low + ((groups - low) / step).round() * step).reshape(64, 128)
    assert torch.allclose(layer.dequantized_weight(), dequantized, atol=step.max().item() * 0.05)
    x = torch.randn(5, 128)
    expected = F.linear(x.bfloat16().float(), layer.dequantized_weight(), linear.bias)
    assert torch.allclose(layer(x), expected, atol=0.05, rtol=0.02)
    assert layer.weight_int4.numel() == 64 * 128 // 2  # two codes per byte


def test_int4_weights_on_a_four_bit_grid_come_back_exactly():
    # llama.cpp's Q4_1 stores min + code * step per block of 32: our group-32 int4 finds the same grid.
    # Values are multiples of 1/8 that bf16 holds exactly; each block uses codes 0 and 15, as Q4_1 does.
    torch.manual_seed(0)
    codes = torch.randint(0, 16, (32, 2, 32)).float()
    codes[..., 0], codes[..., 1] = 0, 15
    low, step = (torch.randn(32, 2, 1) * 8).round() / 8, torch.tensor(0.125)
    linear = nn.Linear(64, 32, bias=False)
    with torch.no_grad():
        linear.weight.copy_((low + codes * step).reshape(32, 64))
    assert torch.equal(Q.Int4Linear(linear, group_size=32).dequantized_weight(), linear.weight.detach())


def test_quantize_linears_replaces_every_linear_but_the_head():
    model = nn.Sequential()
    model.add_module("body", nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32)))
    model.add_module("lm_head", nn.Linear(32, 16))
    assert Q.quantize_linears(model, bits=4, group_size=32) == 2
    assert isinstance(model.body[0], Q.Int4Linear) and isinstance(model.lm_head, nn.Linear)
    assert model(torch.randn(2, 64)).shape == (2, 16)


def test_tied_weights_are_counted_and_saved_once():
    embedding = nn.Embedding(100, 16)
    head = nn.Linear(16, 100, bias=False)
    head.weight = embedding.weight
    model = nn.ModuleDict({"embedding": embedding, "head": head})
    assert Q.weight_bytes(model) == 100 * 16 * 4
    size = measure.saved_size_bytes(model)
    assert 100 * 16 * 4 < size < 100 * 16 * 4 + 1024  # data plus a small JSON header


def test_perplexity_of_uniform_logits_is_the_vocabulary_size():
    ids = torch.tensor([3, 1, 4, 1, 5])
    assert Q.perplexity_from_logits(torch.zeros(5, 10), ids) == pytest.approx(10.0)
    logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    expected = math.exp(F.cross_entropy(logits[:-1], ids[1:]).item())
    assert Q.perplexity_from_logits(logits, ids) == pytest.approx(expected)


@pytest.mark.parametrize("call, error, message", [
    (lambda: Q.absmax_quantize(torch.randn(4, 8), bits=3), ValueError, r"bits: expected one of \(4, 8\), got 3"),
    (lambda: Q.zeropoint_quantize(torch.randn(4, 8), bits=16), ValueError, "bits: expected one of"),
    (lambda: Q.absmax_quantize(torch.randn(4, 96), 4, "group", group_size=64), ValueError,
     "group_size: must divide the row length 96"),
    (lambda: Q.absmax_quantize(torch.randn(4, 8), 8, "row"), ValueError, "granularity: expected one of"),
    (lambda: Q.absmax_quantize(torch.randn(2, 4, 8), 8, "channel"), ValueError, "expects a 2-D weight"),
    (lambda: Q.absmax_quantize(torch.arange(8), 8), TypeError, "x: expected a floating-point tensor"),
    (lambda: Q.Int4Linear(nn.Linear(64, 32), group_size=16), ValueError, "group_size: torch's int4 kernel takes"),
    (lambda: Q.Int4Linear(nn.Linear(64, 20), group_size=32), ValueError, "out_features divisible by 16"),
    (lambda: Q.quantize_linears(nn.Linear(64, 32), bits=2), ValueError, "bits: expected one of"),
    (lambda: Q.pack_int4(torch.tensor([1, 2, 3], dtype=torch.uint8)), ValueError, "even-length last dimension"),
    (lambda: Q.pack_int4(torch.tensor([1, 16])), ValueError, r"values in 0..15, got min 1, max 16"),
    (lambda: Q.unpack_int4(torch.tensor([1, 2])), TypeError, "packed: expected a torch.uint8 tensor"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_torchao_int8_weights_are_counted_by_what_they_store():
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model = nn.Sequential(nn.Linear(64, 32))
    quantize_(model, Int8WeightOnlyConfig())
    # int8 codes + one fp32 scale and one int8 zero point per output row, + the fp32 bias
    assert Q.weight_bytes(model) == 32 * 64 + 32 * 4 + 32 * 1 + 32 * 4
    assert measure.saved_size_bytes(model) > Q.weight_bytes(model)


@pytest.mark.parametrize("make", [lambda linear: Q.Int8Linear(linear), lambda linear: Q.Int4Linear(linear, 32)],
                         ids=["int8", "int4"])
def test_int8_and_int4_linear_name_an_input_of_the_wrong_width(make):
    layer = make(nn.Linear(128, 64))
    with pytest.raises(ValueError, match=r"x: expected last dimension in_features=128, got shape \(6, 64\)"):
        layer(torch.randn(6, 64))  # without the check: reshape(-1, 128) makes 3 rows, then a RuntimeError


def test_matmul_tflops_measures_a_positive_speed_and_refuses_integer_dtypes():
    assert measure.matmul_tflops(torch.float32, "cpu", n=64, repeat=3) > 0
    with pytest.raises(ValueError, match="dtype: expected a floating-point dtype"):
        measure.matmul_tflops(torch.int8, n=8)
    with pytest.raises(TypeError, match="dtype"):
        measure.matmul_tflops("bf16", n=8)


def test_the_measuring_tools_live_in_benchmarks_not_in_the_learners_package():
    for name in ("saved_size_bytes", "matmul_tflops", "resident_mb", "hf_logits", "hf_tokens_per_second"):
        assert not hasattr(Q, name), name
        assert callable(getattr(measure, name))
    assert measure.resident_mb() > 0


def test_hf_logits_and_tokens_per_second_on_a_tiny_hugging_face_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=64, n_embd=16, n_layer=1, n_head=2)).eval()
    ids = torch.tensor([1, 2, 3, 4])
    logits = measure.hf_logits(model, ids)
    assert logits.shape == (4, 50) and logits.dtype == torch.float32
    with torch.no_grad():
        assert torch.equal(logits, model(ids[None]).logits[0])

    class Tokenizer:  # what generate needs from a tokenizer: the prompt as a BatchEncoding-like dict
        def __call__(self, prompt, return_tensors):
            from transformers import BatchEncoding

            return BatchEncoding({"input_ids": torch.tensor([[1, 2, 3]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)})

    assert measure.hf_tokens_per_second(model, Tokenizer(), "any prompt", n_tokens=4) > 0
