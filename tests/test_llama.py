"""course_lib.llama is transformers' LlamaForCausalLM rebuilt by hand: same logits, same greedy tokens.

The reference is the real SmolLM2-135M-Instruct as transformers runs it (loaded once for the module),
and transformers' own pieces (rotary embedding, repeat_kv, logits warpers) for the components.
"""

import pytest
import torch
import torch.nn.functional as F
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper
from transformers.models.llama import modeling_llama as hf_llama

from course_lib import llama, lora, pretrained, scaling
from course_lib.llama import Llama, LlamaConfig, RMSNorm, apply_rope, repeat_kv, rope_cos_sin, sampling_probs

PROMPTS = ["What is the capital of France?", "le chat est sous la table",
           "Write a Python function that adds two numbers."]
TINY = LlamaConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=48, max_seq_len=64)


@pytest.fixture(scope="module")
def smollm2(smollm2_pair):
    hf_model, tokenizer = smollm2_pair
    ours = Llama.from_hf_state_dict(LlamaConfig.from_hf(hf_model.config), hf_model.state_dict())
    return hf_model, tokenizer, ours


def chat_ids(tokenizer, question: str) -> torch.Tensor:
    text = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                         tokenize=False)
    return tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids


def test_config_is_read_from_the_transformers_config(smollm2):
    hf_model, _, ours = smollm2
    hf, cfg = hf_model.config, ours.config
    assert (cfg.vocab_size, cfg.d_model, cfg.n_layers) == (hf.vocab_size, hf.hidden_size, hf.num_hidden_layers)
    assert (cfg.n_heads, cfg.n_kv_heads, cfg.d_ff) == (hf.num_attention_heads, hf.num_key_value_heads,
                                                        hf.intermediate_size)
    assert cfg.rope_theta == hf.rope_parameters["rope_theta"] and cfg.norm_eps == pytest.approx(hf.rms_norm_eps)
    assert cfg.d_head == hf.head_dim and cfg.tie_embeddings == hf.tie_word_embeddings


def test_parameter_count_equals_transformers_and_embeddings_are_tied(smollm2):
    hf_model, _, ours = smollm2
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hf_model.parameters())
    assert ours.lm_head.weight is ours.embed_tokens.weight


def test_loaded_weights_are_copies_not_shared_with_the_transformers_model(smollm2):
    hf_model, _, ours = smollm2
    assert ours.layers[0].mlp.up_proj.weight.data_ptr() != hf_model.model.layers[0].mlp.up_proj.weight.data_ptr()
    assert torch.equal(ours.layers[0].mlp.up_proj.weight, hf_model.model.layers[0].mlp.up_proj.weight)


@pytest.mark.parametrize("question", PROMPTS)
def test_logits_equal_transformers_within_1e_4(smollm2, question):
    hf_model, tokenizer, ours = smollm2
    ids = chat_ids(tokenizer, question)
    with torch.no_grad():
        expected, got = hf_model(ids).logits, ours(ids)
    assert got.shape == expected.shape == (1, ids.shape[1], 49_152)
    assert (got - expected).abs().max().item() <= 1e-4


@pytest.mark.parametrize("question", PROMPTS)
def test_greedy_generation_with_kv_cache_gives_the_same_tokens_as_transformers_generate(smollm2, question):
    hf_model, tokenizer, ours = smollm2
    ids = chat_ids(tokenizer, question)
    expected = hf_model.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=tokenizer.eos_token_id)
    got = ours.generate(ids, 12, eos_id=tokenizer.eos_token_id)
    assert got.tolist() == expected.tolist()


def test_sampling_with_the_same_seed_gives_the_same_tokens_as_transformers(smollm2):
    hf_model, tokenizer, ours = smollm2
    ids = chat_ids(tokenizer, "Tell me a story about a cat.")
    torch.manual_seed(123)
    expected = hf_model.generate(ids, max_new_tokens=10, do_sample=True, temperature=0.8, top_p=0.9, top_k=None,
                                 eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(123)
    got = ours.generate(ids, 10, temperature=0.8, top_p=0.9, eos_id=tokenizer.eos_token_id)
    assert got.tolist() == expected.tolist()


def test_our_llama_answers_the_capital_of_france(smollm2):
    _, tokenizer, ours = smollm2
    ids = chat_ids(tokenizer, "What is the capital of France?")
    reply = tokenizer.decode(ours.generate(ids, 12, eos_id=tokenizer.eos_token_id)[0, ids.shape[1]:],
                             skip_special_tokens=True)
    assert reply == "The capital of France is Paris."


def test_rmsnorm_equals_torch_rms_norm():
    torch.manual_seed(0)
    norm = RMSNorm(16, eps=1e-5)
    torch.nn.init.normal_(norm.weight)
    x = torch.randn(3, 5, 16)
    torch.testing.assert_close(norm(x), F.rms_norm(x, (16,), norm.weight, eps=1e-5))


def test_rotary_embedding_equals_transformers():
    hf_config = hf_llama.LlamaConfig(hidden_size=64, num_attention_heads=4, rope_parameters={"rope_type": "default",
                                                                                            "rope_theta": 500.0})
    torch.manual_seed(0)
    q, k = torch.randn(2, 4, 7, 16), torch.randn(2, 4, 7, 16)
    positions = torch.arange(3, 10)
    hf_cos, hf_sin = hf_llama.LlamaRotaryEmbedding(hf_config)(q, positions[None])
    expected = hf_llama.apply_rotary_pos_emb(q, k, hf_cos, hf_sin)
    cos, sin = rope_cos_sin(positions, 16, 500.0)
    torch.testing.assert_close((apply_rope(q, cos, sin), apply_rope(k, cos, sin)), expected)


def test_rotary_embedding_keeps_lengths_and_makes_scores_depend_on_relative_position_only():
    torch.manual_seed(0)
    q, k = torch.randn(16), torch.randn(16)

    def score(pq, pk):
        cos, sin = rope_cos_sin(torch.tensor([pq, pk]), 16, 10_000.0)
        rq, rk = apply_rope(torch.stack([q, k]), cos, sin)
        return rq @ rk, rq.norm()

    assert score(5, 2)[0].item() == pytest.approx(score(13, 10)[0].item(), abs=1e-4)
    assert score(5, 2)[1].item() == pytest.approx(q.norm().item(), abs=1e-5)


def test_repeat_kv_equals_transformers_repeat_kv():
    x = torch.randn(2, 3, 5, 8)
    assert torch.equal(repeat_kv(x, 3), hf_llama.repeat_kv(x, 3))


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, None, 0.9), (0.7, None, 0.5), (1.3, 5, None),
                                                       (0.5, 10, 0.8)])
def test_sampling_probs_equal_transformers_logits_warpers(temperature, top_k, top_p):
    torch.manual_seed(0)
    logits = torch.randn(3, 50) * 3
    scores = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(None, scores)
    if top_p is not None:
        scores = TopPLogitsWarper(top_p)(None, scores)
    torch.testing.assert_close(sampling_probs(logits, temperature, top_k, top_p), scores.softmax(-1))


def test_generation_with_kv_cache_equals_generation_recomputing_everything():
    torch.manual_seed(0)
    model = Llama(TINY).eval()
    ids = torch.randint(0, 64, (2, 5))
    assert torch.equal(model.generate(ids, 10, use_cache=True), model.generate(ids, 10, use_cache=False))


def test_feeding_tokens_in_chunks_through_the_cache_gives_the_full_pass_logits():
    torch.manual_seed(0)
    model = Llama(TINY).eval()
    ids = torch.randint(0, 64, (1, 12))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache()
        chunks = [model(ids[:, :5], cache), model(ids[:, 5:9], cache), model(ids[:, 9:], cache)]
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, atol=1e-5, rtol=1e-5)


def test_generation_stops_at_eos_and_pads_finished_rows_with_it():
    torch.manual_seed(0)
    model = Llama(TINY).eval()
    ids = torch.randint(0, 64, (2, 4))
    free = model.generate(ids, 8)
    eos = free[0, 6].item()  # a token row 0 produces: call it "end of sequence"
    stopped = model.generate(ids, 8, eos_id=eos)
    cuts = []
    for row in range(2):
        new = free[row, 4:].tolist()
        cuts.append(new.index(eos) + 1 if eos in new else len(new))
    assert stopped.shape[1] == 4 + max(cuts), "generation stops once every row has produced eos"
    for row, cut in enumerate(cuts):
        padding = [eos] * (max(cuts) - cut)
        assert stopped[row, 4:].tolist() == free[row, 4:4 + cut].tolist() + padding


def test_grouped_query_attention_shrinks_the_kv_cache_by_heads_over_kv_heads(smollm2):
    _, tokenizer, ours = smollm2
    cache = ours.new_cache()
    ids = chat_ids(tokenizer, "Hi")
    with torch.no_grad():
        ours(ids, cache)
    measured = sum(c.k.numel() * c.k.element_size() + c.v.numel() * c.v.element_size() for c in cache)
    cfg = ours.config
    assert measured == scaling.kv_cache_bytes(cfg.n_layers, cfg.n_kv_heads, cfg.d_head, ids.shape[1], dtype="float32")
    assert (scaling.kv_cache_bytes(cfg.n_layers, cfg.n_heads, cfg.d_head, 100, dtype="float32")
            == 3 * scaling.kv_cache_bytes(cfg.n_layers, cfg.n_kv_heads, cfg.d_head, 100, dtype="float32"))


def test_a_config_whose_kv_heads_do_not_divide_the_heads_is_refused():
    with pytest.raises(ValueError, match="n_kv_heads: must divide n_heads=4"):
        LlamaConfig(vocab_size=64, d_model=32, n_layers=1, n_heads=4, n_kv_heads=3, d_ff=48)


def test_a_state_dict_that_does_not_fit_the_config_is_refused_by_name():
    state = Llama(TINY).state_dict()
    state.pop("layers.1.mlp.up_proj.weight")
    with pytest.raises(ValueError, match=r"missing \['layers.1.mlp.up_proj.weight'\]"):
        Llama.from_hf_state_dict(TINY, state)
    wrong = dict(Llama(TINY).state_dict())
    wrong["norm.weight"] = torch.ones(7)
    with pytest.raises(ValueError, match=r"state_dict\['norm.weight'\]: expected shape \(32,\), got \(7,\)"):
        Llama.from_hf_state_dict(TINY, wrong)


def test_float_ids_and_bad_sampling_settings_are_refused():
    model = Llama(TINY)
    with pytest.raises(ValueError, match="ids: expected an integer tensor"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="top_p: expected a probability"):
        sampling_probs(torch.zeros(5), top_p=1.5)
    with pytest.raises(ValueError, match="temperature: expected a number >= 0"):
        model.generate(torch.zeros(1, 2, dtype=torch.long), 3, temperature=-1.0)


@pytest.mark.parametrize("bad", [64, 1000, -1])
def test_llama_rejects_token_id_at_or_above_vocab_size_or_negative(bad):
    model = Llama(TINY)
    with pytest.raises(ValueError, match=rf"ids: token ids must be in \[0, vocab_size=64\), got values from "
                                         rf"{min(bad, 3)} to {max(bad, 3)}"):
        model(torch.tensor([[3, bad]]))


def test_the_notebook_09_aliases_give_what_scaling_and_lora_give():
    model = Llama(TINY)
    assert llama.count_parameters(model) == lora.count_parameters(model)
    kv = scaling.kv_cache_bytes(TINY.n_layers, TINY.n_kv_heads, TINY.d_head, 10, dtype="float32")
    assert llama.kv_cache_bytes(TINY, 10) == kv
    assert llama.kv_cache_bytes(TINY, 10, bytes_per_value=2, kv_heads=TINY.n_heads) == kv
    with pytest.raises(ValueError, match="seq_len: expected a positive int, got -5"):
        llama.kv_cache_bytes(TINY, -5)


def tiny_transformers_llama():
    from transformers import LlamaConfig as HFLlamaConfig
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    config = HFLlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                           rms_norm_eps=1e-5, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def test_from_hf_state_dict_accepts_the_transformers_config_and_computes_the_same_logits():
    hf_model = tiny_transformers_llama()
    ours = Llama.from_hf_state_dict(hf_model.config, hf_model.state_dict())
    assert ours.config == LlamaConfig.from_hf(hf_model.config)
    ids = torch.randint(0, 64, (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(ours(ids), hf_model(ids).logits, atol=1e-5)


def test_a_transformers_config_given_to_llama_names_the_module_of_both_classes():
    hf_config = tiny_transformers_llama().config
    with pytest.raises(TypeError, match=r"config: expected course_lib\.llama\.LlamaConfig, got "
                                        r"transformers\.models\.llama\.configuration_llama\.LlamaConfig"):
        Llama(hf_config)


# --- LitGPT checkpoints (the 7B of ec2/llama7b.sh) -----------------------------------------------------

UNTIED = LlamaConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=48, max_seq_len=64,
                     rope_theta=10_000.0, norm_eps=1e-6, tie_embeddings=False)


def hf_tiny_llama(config: LlamaConfig):
    from transformers import LlamaConfig as HFConfig, LlamaForCausalLM

    torch.manual_seed(0)
    hf = LlamaForCausalLM(HFConfig(vocab_size=config.vocab_size, hidden_size=config.d_model,
                                   intermediate_size=config.d_ff, num_hidden_layers=config.n_layers,
                                   num_attention_heads=config.n_heads, num_key_value_heads=config.n_kv_heads,
                                   max_position_embeddings=config.max_seq_len, rms_norm_eps=config.norm_eps,
                                   rope_theta=config.rope_theta, tie_word_embeddings=False))
    with torch.no_grad():  # non-trivial norm weights, so a swapped norm would show
        for name, p in hf.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return hf.eval()


def as_litgpt(hf_state: dict) -> dict:
    """A transformers Llama state dict written the way LitGPT's converter writes it: its names, and q, k, v
    stacked into one `attn.qkv` matrix (ec2/check_litgpt.sh checks the real converter the same way)."""
    out, layer_names = {}, {"input_layernorm.weight": "norm_1.weight", "post_attention_layernorm.weight": "norm_2.weight",
                            "self_attn.o_proj.weight": "attn.proj.weight", "mlp.gate_proj.weight": "mlp.fc_1.weight",
                            "mlp.up_proj.weight": "mlp.fc_2.weight", "mlp.down_proj.weight": "mlp.proj.weight"}
    out["transformer.wte.weight"] = hf_state["model.embed_tokens.weight"]
    out["transformer.ln_f.weight"] = hf_state["model.norm.weight"]
    out["lm_head.weight"] = hf_state["lm_head.weight"]
    layers = {int(k.split(".")[2]) for k in hf_state if k.startswith("model.layers.")}
    for i in layers:
        p = f"model.layers.{i}."
        for theirs, lit in layer_names.items():
            out[f"transformer.h.{i}.{lit}"] = hf_state[p + theirs]
        out[f"transformer.h.{i}.attn.qkv.weight"] = torch.cat([hf_state[p + f"self_attn.{x}_proj.weight"]
                                                               for x in "qkv"])
    return out


def test_a_litgpt_checkpoint_loads_into_our_llama_and_computes_the_transformers_logits(tmp_path):
    hf = hf_tiny_llama(UNTIED)
    path = tmp_path / "lit_model.pth"
    torch.save(as_litgpt(hf.state_dict()), path)
    ours = llama.load_litgpt_checkpoint(path, UNTIED, dtype=torch.float32)
    ids = torch.randint(0, 64, (2, 11), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(ours.generate(ids[:, :4], 6), hf.generate(ids[:, :4], max_new_tokens=6, do_sample=False))
    on_disk = torch.load(path, weights_only=True)["transformer.wte.weight"]
    with torch.no_grad():
        ours.embed_tokens.weight.add_(1.0)  # our own copy: the checkpoint on disk is not changed
    assert torch.equal(torch.load(path, weights_only=True)["transformer.wte.weight"], on_disk)


def test_a_litgpt_checkpoint_loads_in_bfloat16_by_default(tmp_path):
    path = tmp_path / "lit_model.pth"
    torch.save(as_litgpt(hf_tiny_llama(UNTIED).state_dict()), path)
    assert llama.load_litgpt_checkpoint(path, UNTIED).lm_head.weight.dtype == torch.bfloat16


def test_a_litgpt_checkpoint_that_does_not_fit_is_refused_with_the_reason(tmp_path):
    state = as_litgpt(hf_tiny_llama(UNTIED).state_dict())
    path = tmp_path / "lit_model.pth"
    with pytest.raises(FileNotFoundError, match="ec2/llama7b.sh"):
        llama.load_litgpt_checkpoint(path, UNTIED)
    torch.save(state, path)
    with pytest.raises(ValueError, match="missing"):
        llama.load_litgpt_checkpoint(path, llama.LlamaConfig(**{**UNTIED.__dict__, "n_layers": 3}))
    with pytest.raises(ValueError, match="q, k, v stacked"):
        llama.litgpt_to_ours(llama.LlamaConfig(**{**UNTIED.__dict__, "n_kv_heads": 4}), state)
    with pytest.raises(ValueError, match="not a weight of a LitGPT Llama"):
        llama.litgpt_to_ours(UNTIED, {**state, "transformer.h.0.attn.rotary.weight": torch.zeros(1)})


def test_random_llama_is_made_in_its_dtype_on_its_device_and_repeats():
    a, b = llama.random_llama(UNTIED, seed=3), llama.random_llama(UNTIED, seed=3)
    assert a.lm_head.weight.dtype == torch.bfloat16 and a.lm_head.weight.device.type == "cpu"
    assert torch.equal(a.layers[0].mlp.up_proj.weight, b.layers[0].mlp.up_proj.weight)
    assert torch.equal(a.norm.weight, torch.ones_like(a.norm.weight))
    assert a.generate(torch.tensor([[1, 2, 3]]), 4).shape == (1, 7)


def test_the_open_llama_7b_config_has_about_seven_billion_parameters():
    with torch.device("meta"):
        model = Llama(llama.OPEN_LLAMA_7B)
    assert 6.6e9 < llama.count_parameters(model) < 6.9e9  # 6.74 B: LLaMA-7B's shape
