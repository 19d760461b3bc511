"""course_lib.model computes what torch's and Hugging Face's transformers compute, and keeps its promises:
causality, a KV cache that changes nothing but speed, clear errors on bad input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.attention import MultiHeadAttention
from course_lib.model import GPT, Block, FeedForward, GPTConfig, sample_next
from course_lib.seq2seq import Seq2SeqConfig, Seq2SeqTransformer, pad_batch

TINY = dict(vocab_size=61, context_length=24, d_model=32, n_layers=2, n_heads=4)


def tanh_gelu(x):
    return F.gelu(x, approximate="tanh")


def copy_mha(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        q, k, v = theirs.in_proj_weight.chunk(3)
        qb, kb, vb = theirs.in_proj_bias.chunk(3)
        for proj, w, b in ((ours.q_proj, q, qb), (ours.k_proj, k, kb), (ours.v_proj, v, vb)):
            proj.weight.copy_(w)
            proj.bias.copy_(b)
        ours.out_proj.load_state_dict(theirs.out_proj.state_dict())


def copy_ff_and_norms(ours: Block, theirs) -> None:
    ours.ff.up.load_state_dict(theirs.linear1.state_dict())
    ours.ff.down.load_state_dict(theirs.linear2.state_dict())
    ours.norm1.load_state_dict(theirs.norm1.state_dict())
    ours.norm2.load_state_dict(theirs.norm2.state_dict())


def test_multi_head_attention_equals_torch_given_the_same_weights():
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(32, 4, batch_first=True)
    ours = MultiHeadAttention(32, 4)
    copy_mha(ours, theirs)
    x = torch.randn(3, 7, 32)
    expected, expected_weights = theirs(x, x, x, average_attn_weights=False)
    out, weights = ours(x, need_weights=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)  # fused kernel path too


@pytest.mark.parametrize("norm_first, norm", [(True, "pre"), (False, "post")])
def test_encoder_block_equals_torch_transformer_encoder_layer(norm_first, norm):
    torch.manual_seed(1)
    theirs = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, dropout=0.0, activation=tanh_gelu,
                                        batch_first=True, norm_first=norm_first).eval()
    ours = Block(32, 4, d_ff=64, causal=False, norm=norm).eval()
    copy_mha(ours.attn, theirs.self_attn)
    copy_ff_and_norms(ours, theirs)
    x = torch.randn(2, 9, 32)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


def test_decoder_block_with_cross_attention_equals_torch_transformer_decoder_layer():
    torch.manual_seed(2)
    theirs = nn.TransformerDecoderLayer(32, 4, dim_feedforward=64, dropout=0.0, activation=tanh_gelu,
                                        batch_first=True, norm_first=True).eval()
    ours = Block(32, 4, d_ff=64, causal=True, cross_attention=True, norm="pre").eval()
    copy_mha(ours.attn, theirs.self_attn)
    copy_mha(ours.cross_attn, theirs.multihead_attn)
    copy_ff_and_norms(ours, theirs)
    ours.norm_cross.load_state_dict(theirs.norm2.state_dict())
    ours.norm2.load_state_dict(theirs.norm3.state_dict())
    x, memory = torch.randn(2, 6, 32), torch.randn(2, 8, 32)
    causal = nn.Transformer.generate_square_subsequent_mask(6)
    expected = theirs(x, memory, tgt_mask=causal, tgt_is_causal=True)
    torch.testing.assert_close(ours(x, context=memory), expected, atol=1e-5, rtol=1e-5)


def test_without_its_non_linearity_the_feed_forward_layer_collapses_to_one_matrix():
    torch.manual_seed(3)
    ff = FeedForward(16, 64)
    ff.act = nn.Identity()
    W = ff.down.weight @ ff.up.weight  # (16, 16): one matrix
    b = ff.down.weight @ ff.up.bias + ff.down.bias
    x = torch.randn(5, 16)
    torch.testing.assert_close(ff(x), x @ W.T + b, atol=1e-5, rtol=1e-5)
    ff.act = nn.GELU(approximate="tanh")
    assert (ff(x) - (x @ W.T + b)).abs().max() > 1e-3


def test_a_position_does_not_see_later_tokens():
    torch.manual_seed(4)
    model = GPT(GPTConfig(**TINY)).eval()
    ids = torch.randint(0, 61, (2, 16))
    changed = ids.clone()
    changed[:, 10:] = torch.randint(0, 61, (2, 6))
    a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert (a[:, 10:] - b[:, 10:]).abs().max() > 1e-4  # later positions do change


def test_the_decoder_does_not_see_later_target_tokens_but_sees_the_whole_source():
    torch.manual_seed(5)
    model = Seq2SeqTransformer(Seq2SeqConfig(src_vocab_size=30, tgt_vocab_size=40, context_length=12)).eval()
    src, tgt = torch.randint(1, 30, (2, 7)), torch.randint(1, 40, (2, 9))
    later_tgt = tgt.clone()
    later_tgt[:, 5:] = torch.randint(1, 40, (2, 4))
    torch.testing.assert_close(model(src, tgt)[:, :5], model(src, later_tgt)[:, :5])
    last_src = src.clone()
    last_src[:, -1] = (src[:, -1] % 28) + 1
    assert (model(src, tgt)[:, 0] - model(last_src, tgt)[:, 0]).abs().max() > 1e-4


def test_padding_the_source_changes_nothing_for_the_real_tokens():
    torch.manual_seed(6)
    model = Seq2SeqTransformer(Seq2SeqConfig(src_vocab_size=30, tgt_vocab_size=40, context_length=12)).eval()
    short, long = [5, 6, 7], [8, 9, 10, 11, 12, 13]
    alone = model.encode(torch.tensor([short]))
    batched = model.encode(pad_batch([short, long], pad_id=0))
    torch.testing.assert_close(batched[0, :3], alone[0], atol=1e-5, rtol=1e-5)
    tgt = torch.tensor([[1, 4, 9]])
    torch.testing.assert_close(model(pad_batch([short, long])[:1], tgt), model(torch.tensor([short]), tgt),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("temperature, top_k", [(0.0, None), (1.0, None), (0.8, 5)])
def test_kv_cache_generation_gives_the_same_tokens_as_recomputing(temperature, top_k):
    torch.manual_seed(7)
    model = GPT(GPTConfig(**TINY))
    prompt = torch.randint(0, 61, (2, 5))
    runs = []
    for use_cache in (True, False):
        generator = torch.Generator().manual_seed(11)
        runs.append(model.generate(prompt, 40, temperature=temperature, top_k=top_k,
                                   use_cache=use_cache, generator=generator))
    assert runs[0].shape == (2, 45)  # 45 > context_length 24: both slide past the context the same way
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(runs[0][:, :5], prompt)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_attention_weights_are_causal_distributions_matching_torch(norm):
    torch.manual_seed(13)
    model = GPT(GPTConfig(**TINY, norm=norm)).eval()
    ids = torch.randint(0, 61, (2, 9))
    maps = model.attention_weights(ids)
    assert len(maps) == 2 and maps[0].shape == (2, 4, 9, 9)
    torch.testing.assert_close(maps[1].sum(-1), torch.ones(2, 4, 9))
    assert torch.all(maps[0].triu(diagonal=1) == 0)
    # the first block sees the embeddings: torch's attention on them gives the same weights
    block = model.blocks[0]
    x = model.tok_emb(ids) + model.pos_emb(torch.arange(9))
    theirs = nn.MultiheadAttention(32, 4, batch_first=True)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([block.attn.q_proj.weight, block.attn.k_proj.weight,
                                               block.attn.v_proj.weight]))
        theirs.in_proj_bias.copy_(torch.cat([block.attn.q_proj.bias, block.attn.k_proj.bias, block.attn.v_proj.bias]))
    h = block.norm1(x) if norm == "pre" else x
    mask = nn.Transformer.generate_square_subsequent_mask(9)
    _, expected = theirs(h, h, h, attn_mask=mask, average_attn_weights=False)
    torch.testing.assert_close(maps[0], expected, atol=1e-6, rtol=1e-5)


def test_the_cache_reproduces_the_logits_of_a_full_forward_pass():
    torch.manual_seed(8)
    model = GPT(GPTConfig(**TINY)).eval()
    ids = torch.randint(0, 61, (1, 12))
    cache = model.new_cache()
    steps = [model(ids[:, :4], cache=cache)] + [model(ids[:, i:i + 1], cache=cache) for i in range(4, 12)]
    torch.testing.assert_close(torch.cat(steps, dim=1), model(ids), atol=1e-5, rtol=1e-5)
    assert len(cache[0]) == 12


def test_our_gpt_computes_the_same_logits_as_hugging_face_gpt2():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(9)
    hf_config = transformers.GPT2Config(vocab_size=97, n_positions=32, n_embd=48, n_layer=3, n_head=4,
                                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    ours = GPT.from_hf_gpt2(hf).eval()
    assert ours.lm_head.weight is ours.tok_emb.weight  # tied, as GPT-2
    assert ours.num_parameters() == sum(p.numel() for p in hf.parameters())
    ids = torch.randint(0, 97, (2, 32))
    torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-5, rtol=1e-4)
    hf_greedy = hf.generate(ids[:, :4], max_new_tokens=10, do_sample=False, pad_token_id=0)
    assert torch.equal(ours.generate(ids[:, :4], 10, temperature=0.0), hf_greedy)


def test_our_gpt_exported_to_hugging_face_gives_the_same_logits_and_greedy_text():
    pytest.importorskip("transformers")
    torch.manual_seed(14)
    ours = GPT(GPTConfig(**TINY, d_ff=80)).eval()
    hf = ours.to_hf_gpt2()
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()  # still tied
    ids = torch.randint(0, 61, (2, 24))
    torch.testing.assert_close(hf(ids).logits, ours(ids), atol=1e-5, rtol=1e-4)
    greedy = hf.generate(ids[:, :3], max_new_tokens=8, do_sample=False, pad_token_id=0)
    assert torch.equal(greedy, ours.generate(ids[:, :3], 8, temperature=0.0))
    with pytest.raises(ValueError, match="GPT-2 has pre-norm blocks"):
        GPT(GPTConfig(**TINY, norm="post")).to_hf_gpt2()


def test_loss_is_cross_entropy_of_the_next_token():
    torch.manual_seed(10)
    model = GPT(GPTConfig(**TINY))
    ids = torch.randint(0, 61, (2, 10))
    x, y = ids[:, :-1], ids[:, 1:]
    expected = F.cross_entropy(model(x).reshape(-1, 61), y.reshape(-1))
    torch.testing.assert_close(model.loss(x, y), expected)
    assert abs(expected.item() - torch.log(torch.tensor(61.0)).item()) < 0.2  # untrained: about log(vocab)


def test_sequence_longer_than_the_context_is_refused_naming_both_lengths():
    model = GPT(GPTConfig(**TINY))
    with pytest.raises(ValueError, match=r"sequence length 25 is longer than the context length 24"):
        model(torch.zeros(1, 25, dtype=torch.long))
    cache = model.new_cache()
    model(torch.zeros(1, 20, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match=r"20 cached \+ 5 new tokens = 25 is longer than the context length 24"):
        model(torch.zeros(1, 5, dtype=torch.long), cache=cache)
    seq2seq = Seq2SeqTransformer(Seq2SeqConfig(src_vocab_size=10, tgt_vocab_size=10, context_length=8))
    with pytest.raises(ValueError, match=r"src: sequence length 9 is longer than the context length 8"):
        seq2seq.encode(torch.ones(1, 9, dtype=torch.long))


@pytest.mark.parametrize("bad, message", [
    (torch.tensor([[1, 61]]), r"ids: token ids must be in \[0, vocab_size=61\), got values from 1 to 61"),
    (torch.tensor([[-1, 3]]), r"ids: token ids must be in \[0, vocab_size=61\), got values from -1 to 3"),
    (torch.tensor([1.0, 2.0]), r"ids: expected shape \(batch, length\)"),
    (torch.tensor([[1.0, 2.0]]), r"ids: expected integer token ids"),
    ([[1, 2]], r"ids: expected a torch.Tensor"),
])
def test_bad_token_ids_are_refused(bad, message):
    model = GPT(GPTConfig(**TINY))
    with pytest.raises((ValueError, TypeError), match=message):
        model(bad)


@pytest.mark.parametrize("kwargs, message", [
    (dict(d_model=30, n_heads=4), r"d_model must be a multiple of n_heads, got d_model=30, n_heads=4"),
    (dict(norm="middle"), r"norm: expected one of \('pre', 'post', 'none'\), got 'middle'"),
    (dict(dropout=1.0), r"dropout: expected a probability in \[0, 1\), got 1.0"),
    (dict(n_layers=0), r"n_layers: expected a positive int, got 0"),
])
def test_bad_configurations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{**TINY, **kwargs})


def test_generate_refuses_bad_settings_and_restores_training_mode():
    model = GPT(GPTConfig(**TINY, dropout=0.1)).train()
    ids = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="temperature: expected a number >= 0"):
        model.generate(ids, 2, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k: expected a positive int or None, got 0"):
        model.generate(ids, 2, top_k=0)
    a = model.generate(ids, 5, temperature=0.0)
    b = model.generate(ids, 5, temperature=0.0)
    assert torch.equal(a, b)  # dropout is off while generating
    assert model.training


def test_top_k_one_is_greedy_and_temperature_zero_is_argmax():
    logits = torch.tensor([[0.1, 3.0, 0.2, 2.9]])
    assert sample_next(logits, 0.0).item() == 1
    draws = {sample_next(logits, 5.0, top_k=1).item() for _ in range(20)}
    assert draws == {1}
    draws = {sample_next(logits, 5.0, top_k=2, generator=torch.Generator().manual_seed(i)).item() for i in range(40)}
    assert draws == {1, 3}


@pytest.mark.parametrize("norm, skip", [("pre", True), ("post", True), ("none", True), ("pre", False),
                                        ("post", False), ("none", False)])
def test_every_norm_and_skip_setting_builds_and_trains_one_step(norm, skip):
    torch.manual_seed(12)
    model = GPT(GPTConfig(**TINY, norm=norm, skip=skip))
    ids = torch.randint(0, 61, (2, 10))
    loss = model.loss(ids[:, :-1], ids[:, 1:])
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())
    has_norm = any(isinstance(m, nn.LayerNorm) for m in model.blocks.modules())
    assert has_norm == (norm != "none")


def test_config_round_trips_through_json():
    import json

    config = GPTConfig(**TINY, dropout=0.1)
    again = GPTConfig.from_dict(json.loads(config.to_json()))
    assert again == config and again.d_ff == 4 * 32
    with pytest.raises(ValueError, match=r"unknown GPTConfig fields \['n_embd'\]"):
        GPTConfig.from_dict({"n_embd": 3})
