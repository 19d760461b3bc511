"""The checkers of notebooks 03 and 04 pass a right answer, and name the cause of the usual wrong ones."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from wrong_answers import assert_fails_naming_it, wrong_kinds

from course_lib.attention import AttentionHead, scaled_dot_product_attention
from course_lib.exercises import FAILED, NOT_ATTEMPTED, PASSED, nb03, nb04


def not_yet(*args, **kwargs):
    raise NotImplementedError


# --- notebook 03 ---------------------------------------------------------------------------------

def softmax_right(x, temperature=1.0):
    z = x / temperature
    e = (z - z.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def test_nb03_softmax_checker_passes_a_stable_softmax_and_explains_overflow():
    assert nb03.exercise_1(softmax_right).status == PASSED
    assert nb03.exercise_1(not_yet).status == NOT_ATTEMPTED
    naive = nb03.exercise_1(lambda x, temperature=1.0: (x / temperature).exp() / (x / temperature).exp().sum(-1, keepdim=True))
    assert naive.status == FAILED and "Subtract each row's max" in naive.detail
    times = nb03.exercise_1(lambda x, temperature=1.0: softmax_right(x * temperature))
    assert times.status == FAILED and "divide by it" in times.detail
    whole = nb03.exercise_1(lambda x, temperature=1.0: (x - x.max()).exp() / (x - x.max()).exp().sum())
    assert whole.status == FAILED and "last dimension" in whole.detail


def attention_right(q, k, v):
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return w @ v, w


def test_nb03_attention_checker_passes_sdpa_and_names_a_missing_or_wrong_scale():
    assert nb03.exercise_2(attention_right).status == PASSED
    assert nb03.exercise_2(scaled_dot_product_attention).status == PASSED

    def unscaled(q, k, v):
        w = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        return w @ v, w

    def by_d(q, k, v):
        w = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1], dim=-1)
        return w @ v, w

    def wrong_dim(q, k, v):
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-2)
        return w @ v, w

    assert "divide the scores by √d_k" in nb03.exercise_2(unscaled).detail
    assert "divide by its square root" in nb03.exercise_2(by_d).detail
    assert "last dimension" in nb03.exercise_2(wrong_dim).detail
    assert "expected a tuple" in nb03.exercise_2(lambda q, k, v: attention_right(q, k, v)[0]).detail


def test_nb03_padding_mask_checker_passes_a_right_mask_and_spots_a_swapped_one():
    def right(lengths, max_len):
        return torch.arange(max_len)[None, :] < torch.tensor(lengths)[:, None]

    assert nb03.exercise_3(right).status == PASSED
    assert "swapped" in nb03.exercise_3(lambda lengths, n: ~right(lengths, n)).detail
    assert "dtype" in nb03.exercise_3(lambda lengths, n: right(lengths, n).float()).detail


# --- notebook 04 ---------------------------------------------------------------------------------

def head_by_hand_right(x, context, W_q, W_k, W_v):
    Q, K, V = x @ W_q, context @ W_k, context @ W_v
    w = torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(K.shape[-1]), dim=-1)
    return w @ V, w


def test_nb04_head_by_hand_checker_passes_the_right_head_and_names_missing_scaling():
    assert nb04.exercise_1(head_by_hand_right).status == PASSED

    def unscaled(x, context, W_q, W_k, W_v):
        w = torch.softmax((x @ W_q) @ (context @ W_k).transpose(-2, -1), dim=-1)
        return w @ (context @ W_v), w

    def self_only(x, context, W_q, W_k, W_v):
        return head_by_hand_right(x, x, W_q, W_k, W_v)

    assert "√d_head" in nb04.exercise_1(unscaled).detail
    assert "7 keys from context" in nb04.exercise_1(self_only).detail


def test_nb04_parameter_count_checker_knows_three_matrices_and_their_biases():
    assert nb04.exercise_2(lambda d, h, bias: 3 * d * h + (3 * h if bias else 0)).status == PASSED
    assert "three" in nb04.exercise_2(lambda d, h, bias: d * h + (h if bias else 0)).detail
    assert "biases" in nb04.exercise_2(lambda d, h, bias: 3 * d * h).detail


def test_nb04_connecting_matrices_checker_wants_the_dictionary_strong_enough():
    tr = pytest.importorskip("course_lib.translation")

    def connect(pairs, vocab, strength=4.0):
        W_q, W_k = torch.zeros(len(vocab), len(pairs)), torch.zeros(len(vocab), len(pairs))
        for i, (fr, en) in enumerate(pairs):
            W_q[vocab.index(en), i] = strength
            W_k[vocab.index(fr), i] = strength
        return W_q, W_k

    assert nb04.exercise_3(connect).status == PASSED
    weak = nb04.exercise_3(lambda pairs, vocab: connect(pairs, vocab, strength=1.0))
    assert weak.status == FAILED and "make the matching entries larger" in weak.detail
    swapped = nb04.exercise_3(lambda pairs, vocab: connect([(e, f) for f, e in pairs], vocab))
    assert swapped.status == FAILED and "looks most at" in swapped.detail
    assert isinstance(tr.Vocabulary, type)


def to_torch_right(head: AttentionHead) -> nn.MultiheadAttention:
    d = head.q_proj.in_features
    mha = nn.MultiheadAttention(d, 1, bias=False, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([head.q_proj.weight, head.k_proj.weight, head.v_proj.weight]))
        mha.out_proj.weight.copy_(torch.eye(d))
    return mha


def test_nb04_to_torch_checker_passes_packed_weights_and_names_the_output_projection():
    assert nb04.exercise_4(to_torch_right).status == PASSED

    def no_identity(head):
        mha = to_torch_right(head)
        with torch.no_grad():
            mha.out_proj.weight.normal_()
        return mha

    def not_batch_first(head):
        mha = nn.MultiheadAttention(head.q_proj.in_features, 1)
        return mha

    assert "out_proj" in nb04.exercise_4(no_identity).detail
    assert "batch_first=True" in nb04.exercise_4(not_batch_first).detail
    assert "in_proj_weight" in nb04.exercise_4(lambda head: nn.MultiheadAttention(6, 1, batch_first=True)).detail


# --- every exercise: a wrong answer is a ❌ with a message, never a traceback, never a ✅ --------

def padding_mask_right(lengths, max_len):
    return torch.arange(max_len)[None, :] < torch.tensor(lengths)[:, None]


def connect_right(pairs, vocab):
    W_q, W_k = torch.zeros(len(vocab), len(pairs)), torch.zeros(len(vocab), len(pairs))
    for i, (fr, en) in enumerate(pairs):
        W_q[vocab.index(en), i] = 4.0
        W_k[vocab.index(fr), i] = 4.0
    return W_q, W_k


EXERCISES = {
    "nb03.exercise_1": (nb03.exercise_1, softmax_right),
    "nb03.exercise_2": (nb03.exercise_2, attention_right),
    "nb03.exercise_3": (nb03.exercise_3, padding_mask_right),
    "nb04.exercise_1": (nb04.exercise_1, head_by_hand_right),
    "nb04.exercise_2": (nb04.exercise_2, lambda d, h, bias: 3 * d * h + (3 * h if bias else 0)),
    "nb04.exercise_3": (nb04.exercise_3, connect_right),
    "nb04.exercise_4": (nb04.exercise_4, to_torch_right),
}


@pytest.mark.parametrize("name", EXERCISES)
def test_the_reference_solution_passes(name):
    checker, solution = EXERCISES[name]
    assert checker(solution).status == PASSED


@pytest.mark.parametrize("name", EXERCISES)
@wrong_kinds
def test_a_wrong_answer_fails_with_a_message_and_no_traceback(name, answer):
    checker, _ = EXERCISES[name]
    assert_fails_naming_it(checker(answer), answer)  # must not raise


def raises_a_shape_error(*args, **kwargs):
    return torch.ones(2, 3) @ torch.ones(2, 3)


@pytest.mark.parametrize("name", EXERCISES)
def test_a_pytorch_shape_error_fails_with_a_message_and_no_traceback(name):
    result = EXERCISES[name][0](raises_a_shape_error)  # must not raise
    assert result.status == FAILED, result
    assert len(result.detail) > 20 and "Traceback" not in result.detail
    assert str(result).startswith("❌")


@pytest.mark.parametrize("name", EXERCISES)
def test_an_unanswered_exercise_is_not_attempted(name):
    assert EXERCISES[name][0](not_yet).status == NOT_ATTEMPTED


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch deprecates .T on tensors that are not 2-d
def test_nb03_K_T_on_batched_tensors_is_named_and_the_transpose_of_the_last_two_dims_suggested():
    def with_dot_T(q, k, v):
        w = torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1)
        return w @ v, w

    result = nb03.exercise_2(with_dot_T)
    assert result.status == FAILED
    assert "attention(Q (2, 3, 8), K (2, 6, 8), V (2, 6, 3)) raised RuntimeError" in result.detail
    assert "K.transpose(-2, -1)" in result.detail and "(8, 6, 2)" in result.detail


def test_nb03_attention_is_checked_on_four_dimensional_batch_and_head_inputs_too():
    def only_up_to_three_dims(q, k, v):
        if q.dim() > 3:
            raise ValueError("four dimensions")
        return attention_right(q, k, v)

    result = nb03.exercise_2(only_up_to_three_dims)
    assert result.status == FAILED and "Q (2, 4, 3, 8)" in result.detail


def test_nb03_softmax_hints_name_torch_max_pairs_and_a_lost_keepdim():
    def with_torch_max(x, temperature=1.0):
        e = (x - torch.max(x, dim=-1)).exp()
        return e / e.sum(-1, keepdim=True)

    def without_keepdim(x, temperature=1.0):
        z = x / temperature
        e = (z - z.amax(-1)).exp()
        return e / e.sum(-1, keepdim=True)

    assert "amax(dim=-1, keepdim=True)" in nb03.exercise_1(with_torch_max).detail
    lost = nb03.exercise_1(without_keepdim)
    assert lost.status == FAILED and "stable_softmax(x of shape (4, 6))" in lost.detail and "keepdim=True" in lost.detail


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_nb04_K_T_inside_a_head_by_hand_gets_the_same_hint():
    def with_dot_T(x, context, W_q, W_k, W_v):
        Q, K, V = x @ W_q, context @ W_k, context @ W_v
        w = torch.softmax(Q @ K.T / math.sqrt(K.shape[-1]), dim=-1)
        return w @ V, w

    result = nb04.exercise_1(with_dot_T)
    assert result.status == FAILED and "K.transpose(-2, -1)" in result.detail


def test_nb04_parameter_count_accepts_a_numerically_right_float_and_refuses_a_string():
    assert nb04.exercise_2(lambda d, h, bias: float(3 * d * h + (3 * h if bias else 0))).status == PASSED
    refused = nb04.exercise_2(lambda d, h, bias: str(3 * d * h + (3 * h if bias else 0)))
    assert refused.status == FAILED and "expected a number" in refused.detail
