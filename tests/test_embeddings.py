"""course_lib.embeddings: one-hot times a matrix is torch's nn.Embedding; positions as the paper defines them.

References: `torch.nn.Embedding` (same weight -> same vectors and gradients), transformers' own
sinusoidal table (DistilBERT's `create_sinusoidal_embeddings`), the formula of Vaswani et al. written
with Python's math module, and our attention, which without positions cannot tell word order.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.attention import scaled_dot_product_attention
from course_lib.embeddings import (LearnedPositionalEmbedding, SinusoidalPositionalEmbedding, TokenEmbedding,
                                   one_hot_embed, sinusoidal_positions)


def test_one_hot_times_the_matrix_equals_nn_embedding_values_and_gradients():
    torch.manual_seed(0)
    ours = TokenEmbedding(50, 8)
    theirs = nn.Embedding(50, 8)
    theirs.weight.data.copy_(ours.weight.data)
    ids = torch.tensor([[3, 7, 7, 0], [49, 1, 2, 3]])
    out_ours, out_theirs = ours(ids), theirs(ids)
    assert out_ours.shape == (2, 4, 8)
    torch.testing.assert_close(out_ours, out_theirs)
    (out_ours * torch.arange(8.0)).sum().backward()
    (out_theirs * torch.arange(8.0)).sum().backward()
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad)
    assert ours.weight.grad[7].abs().sum() > 0 and ours.weight.grad[10].abs().sum() == 0  # unused rows get no gradient


def test_one_hot_embed_picks_rows_of_the_matrix():
    weight = torch.arange(12.0).reshape(4, 3)
    torch.testing.assert_close(one_hot_embed(torch.tensor([2, 0]), weight), weight[[2, 0]])


def test_a_fixed_embedding_does_not_change_when_trained_and_a_learned_one_does():
    torch.manual_seed(0)
    fixed, learned = TokenEmbedding(10, 4, trainable=False), TokenEmbedding(10, 4)
    assert not fixed.weight.requires_grad and learned.weight.requires_grad
    before = fixed.weight.clone(), learned.weight.clone()
    optimizer = torch.optim.SGD([p for m in (fixed, learned) for p in m.parameters() if p.requires_grad], lr=0.1)
    ids = torch.tensor([1, 2, 3])
    (fixed(ids).sum() + learned(ids).sum()).backward()
    optimizer.step()
    assert torch.equal(fixed.weight, before[0]) and not torch.equal(learned.weight, before[1])


def test_the_sinusoidal_table_equals_transformers_own():
    from transformers.models.distilbert.modeling_distilbert import _create_sinusoidal_embeddings

    reference = torch.empty(64, 16)
    _create_sinusoidal_embeddings(64, 16, reference)
    torch.testing.assert_close(sinusoidal_positions(64, 16), reference)


def test_the_sinusoidal_table_follows_the_formula_of_the_paper():
    table = sinusoidal_positions(20, 6)
    for pos in range(20):
        for i in range(3):
            angle = pos / 10_000 ** (2 * i / 6)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_a_shift_by_k_positions_is_the_same_rotation_from_any_position():
    d, k = 8, 5
    table = sinusoidal_positions(40, d).double()
    frequency = torch.tensor([1 / 10_000 ** (2 * i / d) for i in range(d // 2)], dtype=torch.float64)
    rotation = torch.zeros(d, d, dtype=torch.float64)
    for i, w in enumerate(frequency):  # (sin, cos)(p + k) = rotation by k*w of (sin, cos)(p)
        c, s = math.cos(k * w), math.sin(k * w)
        rotation[2 * i: 2 * i + 2, 2 * i: 2 * i + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    torch.testing.assert_close(table[:-k] @ rotation, table[k:], atol=1e-5, rtol=0)


def test_positional_embeddings_add_one_vector_per_position():
    torch.manual_seed(0)
    x = torch.zeros(2, 5, 8)
    learned, fixed = LearnedPositionalEmbedding(16, 8), SinusoidalPositionalEmbedding(16, 8)
    torch.testing.assert_close(learned(x), learned.weight[:5].expand(2, 5, 8))
    torch.testing.assert_close(fixed(x), sinusoidal_positions(16, 8)[:5].expand(2, 5, 8))
    torch.testing.assert_close(fixed(x[:, :2], offset=3), sinusoidal_positions(16, 8)[3:5].expand(2, 2, 8))
    assert sum(p.numel() for p in fixed.parameters()) == 0 and sum(p.numel() for p in learned.parameters()) == 128
    learned(x).sum().backward()
    assert learned.weight.grad[:5].abs().sum() > 0 and learned.weight.grad[5:].abs().sum() == 0


def test_attention_cannot_see_word_order_without_positions_and_can_with_them():
    torch.manual_seed(0)
    tokens, embed = torch.tensor([[4, 9, 1, 7, 3]]), TokenEmbedding(10, 8)
    order = torch.tensor([3, 0, 4, 1, 2])
    x, shuffled = embed(tokens), embed(tokens[:, order])
    out, _ = scaled_dot_product_attention(x, x, x)
    out_shuffled, _ = scaled_dot_product_attention(shuffled, shuffled, shuffled)
    torch.testing.assert_close(out_shuffled, out[:, order])  # permuting the input only permutes the output
    positions = SinusoidalPositionalEmbedding(16, 8)
    px, pshuffled = positions(x), positions(shuffled)
    out, _ = scaled_dot_product_attention(px, px, px)
    out_shuffled, _ = scaled_dot_product_attention(pshuffled, pshuffled, pshuffled)
    assert not torch.allclose(out_shuffled, out[:, order], atol=1e-3)


def test_bad_inputs_name_the_argument():
    embed = TokenEmbedding(10, 4)
    with pytest.raises(TypeError, match="ids: expected an integer tensor"):
        embed(torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="ids: expected a torch.Tensor"):
        embed([1, 2])
    with pytest.raises(ValueError, match=r"ids: token ids must be in \[0, vocab_size=10\), got values from 1 to 10"):
        embed(torch.tensor([1, 10]))
    with pytest.raises(ValueError, match="d_model: expected an even size"):
        sinusoidal_positions(8, 5)
    with pytest.raises(ValueError, match="vocab_size: expected a positive int"):
        TokenEmbedding(0, 4)
    with pytest.raises(ValueError, match="exceed max_positions=4"):
        LearnedPositionalEmbedding(4, 8)(torch.zeros(1, 5, 8))
    with pytest.raises(ValueError, match="x: expected last dimension d_model=8"):
        SinusoidalPositionalEmbedding(4, 8)(torch.zeros(1, 3, 6))


def test_smollm2_token_embeddings_read_from_the_gguf_equal_the_loaded_models(smollm2_pair):
    from course_lib.embeddings import smollm2_token_embeddings

    ids = [0, 2644, 2767, 7042, 49_151]
    model, _ = smollm2_pair
    expected = model.get_input_embeddings().weight.detach()
    torch.testing.assert_close(smollm2_token_embeddings(ids), expected[ids], rtol=0, atol=0)
    assert smollm2_token_embeddings().shape == expected.shape == (49_152, 576)
    with pytest.raises(ValueError, match=r"ids: expected a list of token ids in \[0, 49152\)"):
        smollm2_token_embeddings([49_152])
