"""course_lib.attention computes what torch computes: softmax, scaled dot-product attention (with
boolean and additive masks, forward and backward), one head and many heads against
nn.MultiheadAttention, the KV cache against a full causal pass, and clear errors on bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.attention.bias import causal_lower_right

from course_lib.attention import (AttentionHead, KVCache, MultiHeadAttention, causal_mask,
                                  scaled_dot_product_attention, softmax)

ATOL = 1e-5
# Shapes drawn at random: leading (batch, heads) dimensions, query and key lengths, feature sizes.
lead_dims = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
lengths = st.integers(1, 7)
features = st.integers(1, 9)
seeds = st.integers(0, 2**16)
hypothesis_settings = settings(max_examples=40, deadline=None)


def qkv(seed: int, lead: tuple, lq: int, lk: int, dk: int, dv: int, grad: bool = False):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*lead, n, d, generator=g, dtype=torch.float64).requires_grad_(grad)
            for n, d in ((lq, dk), (lk, dk), (lk, dv))]


def random_bool_mask(seed: int, shape: tuple) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed + 1)) > 0.4


# --- softmax -----------------------------------------------------------------------------------

@hypothesis_settings
@given(seed=seeds, shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
       temperature=st.floats(0.05, 20.0), scale=st.sampled_from([1.0, 30.0, 1000.0]))
def test_softmax_equals_torch_softmax_of_scores_divided_by_temperature(seed, shape, temperature, scale):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    for dim in range(-len(shape), len(shape)):
        expected = torch.softmax(x / temperature, dim=dim)
        torch.testing.assert_close(softmax(x, dim=dim, temperature=temperature), expected, atol=1e-12, rtol=0)


def test_softmax_does_not_overflow_on_large_scores():
    x = torch.tensor([1000.0, 1001.0, 1002.0])  # exp(1000) is inf in float32; subtracting the max avoids it
    torch.testing.assert_close(softmax(x), torch.softmax(x, dim=-1))
    assert torch.isfinite(softmax(x)).all()


def test_softmax_gradient_equals_torch_softmax_gradient():
    x1 = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    upstream = torch.randn(3, 5, dtype=torch.float64)
    (softmax(x1, temperature=0.7) * upstream).sum().backward()
    (torch.softmax(x2 / 0.7, dim=-1) * upstream).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_low_temperature_sharpens_and_high_temperature_flattens():
    x = torch.tensor([1.0, 2.0, 3.0])
    assert softmax(x, temperature=0.1).max() > softmax(x).max() > softmax(x, temperature=10.0).max()
    torch.testing.assert_close(softmax(x, temperature=1e4), torch.full((3,), 1 / 3), atol=1e-3, rtol=0)


@pytest.mark.parametrize("temperature", [0, -1.0, "hot", None])
def test_softmax_rejects_a_temperature_that_is_not_a_positive_number(temperature):
    with pytest.raises(ValueError, match="temperature"):
        softmax(torch.zeros(3), temperature=temperature)


def test_softmax_rejects_a_list_with_a_type_error():
    with pytest.raises(TypeError, match="x: expected a torch.Tensor, got list"):
        softmax([1.0, 2.0])


# --- scaled dot-product attention ----------------------------------------------------------------

@hypothesis_settings
@given(seed=seeds, lead=lead_dims, lq=lengths, lk=lengths, dk=features, dv=features)
def test_attention_output_equals_torch_sdpa_for_random_shapes(seed, lead, lq, lk, dk, dv):
    q, k, v = qkv(seed, lead, lq, lk, dk, dv)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=ATOL, rtol=0)
    reference_weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(dk), dim=-1)
    torch.testing.assert_close(weights, reference_weights, atol=ATOL, rtol=0)
    assert weights.shape == (*lead, lq, lk)


@hypothesis_settings
@given(seed=seeds, lead=lead_dims, lq=lengths, lk=lengths, dk=features, dv=features)
def test_boolean_mask_hides_the_keys_it_marks_false_as_in_torch(seed, lead, lq, lk, dk, dv):
    q, k, v = qkv(seed, lead, lq, lk, dk, dv)
    mask = random_bool_mask(seed, (*lead, lq, lk))  # some rows may hide every key
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=ATOL, rtol=0)
    assert (weights[~mask] == 0).all()
    sums = weights.sum(-1)
    torch.testing.assert_close(sums, mask.any(-1).to(sums.dtype), atol=1e-9, rtol=0)


@hypothesis_settings
@given(seed=seeds, lead=lead_dims, lq=lengths, lk=lengths, dk=features, dv=features)
def test_additive_mask_is_added_to_the_scores_as_in_torch(seed, lead, lq, lk, dk, dv):
    q, k, v = qkv(seed, lead, lq, lk, dk, dv)
    g = torch.Generator().manual_seed(seed + 2)
    bias = torch.randn(lq, lk, generator=g, dtype=torch.float64)  # broadcast over (batch, heads)
    bias = bias.masked_fill(~random_bool_mask(seed, (lq, lk)), float("-inf"))
    out, _ = scaled_dot_product_attention(q, k, v, bias)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=bias), atol=ATOL, rtol=0)


@pytest.mark.parametrize("lq, lk", [(1, 1), (3, 3), (4, 7), (1, 6)])
def test_causal_mask_is_torchs_lower_right_causal_mask(lq, lk):
    q, k, v = qkv(0, (2, 3), lq, lk, 8, 5)
    out, weights = scaled_dot_product_attention(q, k, v, causal_mask(lq, lk))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(lq, lk)),
                               atol=ATOL, rtol=0)
    if lq == lk:
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=ATOL, rtol=0)
    assert torch.equal(weights.triu(diagonal=lk - lq + 1), torch.zeros_like(weights))  # nothing from the future


@pytest.mark.parametrize("mask_kind", ["none", "bool", "additive", "bool with a blind row"])
def test_gradients_flow_to_q_k_v_and_equal_torchs(mask_kind):
    lq, lk = 4, 6
    ours = qkv(3, (2, 2), lq, lk, 5, 3, grad=True)
    theirs = [t.detach().clone().requires_grad_() for t in ours]
    mask = {"none": None, "bool": causal_mask(lq, lk),
            "additive": torch.zeros(lq, lk, dtype=torch.float64).masked_fill(~causal_mask(lq, lk), float("-inf")),
            "bool with a blind row": causal_mask(lq, lk).index_fill(0, torch.tensor([1]), False)}[mask_kind]
    upstream = torch.randn(2, 2, lq, 3, dtype=torch.float64)
    (scaled_dot_product_attention(*ours, mask)[0] * upstream).sum().backward()
    (F.scaled_dot_product_attention(*theirs, attn_mask=mask) * upstream).sum().backward()
    for name, a, b in zip("qkv", ours, theirs):
        assert a.grad is not None and torch.isfinite(a.grad).all(), f"{name} got no finite gradient"
        torch.testing.assert_close(a.grad, b.grad, atol=ATOL, rtol=0, msg=f"gradient of {name}")


def test_a_query_that_may_see_no_key_gets_zero_weights_not_nan():
    q, k, v = qkv(0, (), 2, 3, 4, 4)
    mask = torch.tensor([[False, False, False], [True, True, False]])
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.equal(weights[0], torch.zeros(3, dtype=weights.dtype)) and torch.equal(out[0], torch.zeros_like(out[0]))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=ATOL, rtol=0)


def test_float32_inputs_agree_with_torch_to_float32_precision():
    q, k, v = (t.float() for t in qkv(5, (4, 2), 10, 12, 16, 16))
    out, _ = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)


# --- bad input ---------------------------------------------------------------------------------

def test_mismatched_query_and_key_sizes_raise_value_error_naming_the_shapes():
    with pytest.raises(ValueError, match=r"q, k: the last dimensions must match.*\(2, 3, 4\).*\(2, 5, 6\)"):
        scaled_dot_product_attention(torch.zeros(2, 3, 4), torch.zeros(2, 5, 6), torch.zeros(2, 5, 6))


def test_keys_and_values_of_different_lengths_raise_value_error():
    with pytest.raises(ValueError, match=r"k, v: expected as many keys as values.*\(5, 4\).*\(6, 4\)"):
        scaled_dot_product_attention(torch.zeros(3, 4), torch.zeros(5, 4), torch.zeros(6, 4))


@pytest.mark.parametrize("shapes", [((4,), (5, 4), (5, 4)), ((2, 3, 4), (5, 4), (5, 4))])
def test_wrong_rank_raises_value_error_naming_the_shape(shapes):
    with pytest.raises(ValueError, match=r"dimensions.*\(" ):
        scaled_dot_product_attention(*(torch.zeros(s) for s in shapes))


def test_batch_dimensions_that_do_not_broadcast_raise_value_error():
    with pytest.raises(ValueError, match=r"leading \(batch, head\) dimensions do not broadcast.*\(2, 3, 4\).*\(3, 5, 4\)"):
        scaled_dot_product_attention(torch.zeros(2, 3, 4), torch.zeros(3, 5, 4), torch.zeros(3, 5, 4))


@pytest.mark.parametrize("mask_shape", [(3, 4), (5, 3), (2, 2, 3, 5)])
def test_a_mask_of_the_wrong_shape_raises_value_error_naming_both_shapes(mask_shape):
    q, k, v = torch.zeros(2, 3, 4), torch.zeros(2, 5, 4), torch.zeros(2, 5, 4)
    expected = rf"mask: shape {re_shape(mask_shape)} does not broadcast to the scores' shape \(2, 3, 5\)"
    with pytest.raises(ValueError, match=expected):
        scaled_dot_product_attention(q, k, v, torch.ones(mask_shape, dtype=torch.bool))


def re_shape(shape: tuple) -> str:
    return "\\(" + ", ".join(map(str, shape)) + "\\)"


@pytest.mark.parametrize("bad", ["q", "k", "v", "mask"])
def test_something_other_than_a_tensor_raises_type_error_naming_the_argument(bad):
    args = {"q": torch.zeros(3, 4), "k": torch.zeros(5, 4), "v": torch.zeros(5, 4), "mask": torch.ones(3, 5).bool()}
    args[bad] = [[0.0] * 4] * 3
    with pytest.raises(TypeError, match=rf"{bad}: expected a torch.Tensor"):
        scaled_dot_product_attention(**args)


def test_an_integer_mask_is_refused_rather_than_added_to_the_scores():
    with pytest.raises(TypeError, match=r"mask: expected dtype bool.*torch.int64"):
        scaled_dot_product_attention(torch.zeros(3, 4), torch.zeros(5, 4), torch.zeros(5, 4), torch.ones(3, 5, dtype=torch.long))


def test_integer_or_mixed_dtypes_raise_type_error():
    with pytest.raises(TypeError, match="q: expected a floating-point tensor"):
        scaled_dot_product_attention(torch.zeros(3, 4, dtype=torch.long), torch.zeros(5, 4), torch.zeros(5, 4))
    with pytest.raises(TypeError, match="expected one dtype"):
        scaled_dot_product_attention(torch.zeros(3, 4), torch.zeros(5, 4, dtype=torch.float64), torch.zeros(5, 4))


def test_causal_mask_refuses_fewer_keys_than_queries():
    with pytest.raises(ValueError, match="n_keys: expected at least n_queries=4, got 2"):
        causal_mask(4, 2)


# --- one head and many heads against nn.MultiheadAttention ---------------------------------------

def torch_mha_like(ours: nn.Module, d_model: int, n_heads: int, bias: bool) -> nn.MultiheadAttention:
    """An nn.MultiheadAttention holding our weights (its q, k, v weights are packed in one matrix)."""
    ref = nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True).double()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        if bias:
            ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        out_proj = getattr(ours, "out_proj", None)
        ref.out_proj.weight.copy_(out_proj.weight if out_proj is not None else torch.eye(d_model))
        if bias:
            ref.out_proj.bias.copy_(out_proj.bias)
    return ref.eval()


@pytest.mark.parametrize("causal", [False, True])
def test_attention_head_equals_torch_multihead_attention_with_one_head(causal):
    torch.manual_seed(0)
    d = 6
    head = AttentionHead(d, d).double()
    ref = torch_mha_like(head, d, 1, bias=False)  # out_proj = identity: one head has no output mixing
    x = torch.randn(2, 5, d, dtype=torch.float64)
    mask = causal_mask(5) if causal else None
    out, weights = head(x, mask=mask)
    ref_out, ref_weights = ref(x, x, x, attn_mask=None if mask is None else ~mask)  # torch: True = hidden
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(weights, ref_weights, atol=ATOL, rtol=0)


def test_attention_head_cross_attention_takes_keys_and_values_from_the_context():
    torch.manual_seed(1)
    head = AttentionHead(4, 4).double()
    ref = torch_mha_like(head, 4, 1, bias=False)
    x, context = torch.randn(3, 2, 4, dtype=torch.float64), torch.randn(3, 7, 4, dtype=torch.float64)
    out, weights = head(x, context)
    ref_out, ref_weights = ref(x, context, context)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    assert weights.shape == (3, 2, 7)


def test_attention_head_projects_to_d_head_and_rejects_the_wrong_width():
    head = AttentionHead(8, 3)
    out, weights = head(torch.randn(2, 5, 8))
    assert out.shape == (2, 5, 3) and weights.shape == (2, 5, 5)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., length, d_model=8\), got \(2, 5, 7\)"):
        head(torch.randn(2, 5, 7))
    with pytest.raises(TypeError, match="x: expected a torch.Tensor"):
        head("le chat")


@pytest.mark.parametrize("n_heads, causal, need_weights", [(1, False, False), (4, False, True), (4, True, False),
                                                           (2, True, True)])
def test_multi_head_attention_equals_torch_multihead_attention(n_heads, causal, need_weights):
    torch.manual_seed(2)
    d, length = 8, 6
    ours = MultiHeadAttention(d, n_heads, causal=causal).double().eval()
    ref = torch_mha_like(ours, d, n_heads, bias=True)
    x = torch.randn(3, length, d, dtype=torch.float64)
    result = ours(x, need_weights=need_weights)
    out = result[0] if need_weights else result
    ref_out, ref_weights = ref(x, x, x, attn_mask=~causal_mask(length) if causal else None,
                               average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)
    if need_weights:
        torch.testing.assert_close(result[1], ref_weights, atol=ATOL, rtol=0)


@pytest.mark.parametrize("need_weights", [False, True])
def test_multi_head_padding_mask_equals_torch_key_padding_mask(need_weights):
    torch.manual_seed(3)
    ours = MultiHeadAttention(8, 2, causal=True).double().eval()
    ref = torch_mha_like(ours, 8, 2, bias=True)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    real = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])  # second sentence: 2 padding tokens
    result = ours(x, mask=real[:, None, None, :], need_weights=need_weights)
    out = result[0] if need_weights else result
    ref_out, _ = ref(x, x, x, key_padding_mask=~real, attn_mask=~causal_mask(5))
    torch.testing.assert_close(out, ref_out, atol=ATOL, rtol=0)


def test_multi_head_rejects_bad_shapes_and_widths():
    with pytest.raises(ValueError, match="d_model must be a positive multiple of n_heads"):
        MultiHeadAttention(10, 3)
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"x: expected shape \(batch, length, d_model=8\), got \(5, 8\)"):
        mha(torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"context: expected shape \(batch=2, length, d_model=8\), got \(2, 4, 6\)"):
        mha(torch.randn(2, 3, 8), context=torch.randn(2, 4, 6))
    with pytest.raises(ValueError, match=r"mask: shape \(2, 4\) does not broadcast to the scores' shape \(2, 2, 3, 3\)"):
        mha(torch.randn(2, 3, 8), mask=torch.ones(2, 4, dtype=torch.bool))


# --- KV cache ----------------------------------------------------------------------------------

@pytest.mark.parametrize("prefill", [1, 3])
def test_kv_cache_step_by_step_equals_one_full_causal_pass(prefill):
    torch.manual_seed(4)
    mha = MultiHeadAttention(8, 2, causal=True).double().eval()
    x = torch.randn(2, 7, 8, dtype=torch.float64)
    full = mha(x)
    cache = KVCache()
    pieces = [mha(x[:, :prefill], cache=cache)]
    for t in range(prefill, x.shape[1]):
        pieces.append(mha(x[:, t:t + 1], cache=cache))
        assert len(cache) == t + 1
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=ATOL, rtol=0)


def test_kv_cache_with_weights_path_equals_the_fused_path():
    torch.manual_seed(5)
    mha = MultiHeadAttention(8, 4, causal=True).double().eval()
    x = torch.randn(1, 4, 8, dtype=torch.float64)
    fused, with_weights = KVCache(), KVCache()
    for t in range(4):
        a = mha(x[:, t:t + 1], cache=fused)
        b, weights = mha(x[:, t:t + 1], cache=with_weights, need_weights=True)
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
        assert weights.shape == (1, 4, 1, t + 1)


def test_cross_attention_cache_is_filled_once_from_the_context():
    torch.manual_seed(6)
    mha = MultiHeadAttention(8, 2).double().eval()
    memory = torch.randn(1, 5, 8, dtype=torch.float64)
    queries = torch.randn(1, 3, 8, dtype=torch.float64)
    cache = KVCache()
    steps = [mha(queries[:, t:t + 1], context=memory, cache=cache) for t in range(3)]
    assert len(cache) == 5  # the encoder's 5 positions, not 15
    torch.testing.assert_close(torch.cat(steps, dim=1), mha(queries, context=memory), atol=ATOL, rtol=0)


def test_kv_cache_refuses_keys_of_another_shape():
    cache = KVCache()
    cache.update(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"k: expected .* matching the cached \(1, 2, 3, 4\), got \(1, 3, 1, 4\)"):
        cache.update(torch.zeros(1, 3, 1, 4), torch.zeros(1, 3, 1, 4))
