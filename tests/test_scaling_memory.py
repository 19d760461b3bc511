"""course_lib.scaling's memory arithmetic against hand-computed cases and real models' tensors."""

import pytest
import torch

from course_lib import scaling


def test_mixed_precision_adam_costs_sixteen_bytes_per_parameter():
    parts = scaling.training_state_bytes(7e9, "mixed-precision adam")
    # bf16 weights 2 + bf16 gradients 2 + fp32 master copy 4 + Adam m 4 + Adam v 4
    assert parts == {"weights": 14e9, "gradients": 14e9, "optimizer states": 84e9}
    assert sum(scaling.training_state_bytes(7e9, "fp32 adam").values()) == 112e9
    assert sum(scaling.training_state_bytes(1e9, "fp32 sgd").values()) == 8e9


def test_llama2_7b_shape_gives_its_published_parameter_count():
    # Llama-2-7b: 6,738,415,616 parameters (32 layers, d 4096, MLP 11008, vocab 32000, untied head).
    assert scaling.LLAMA2_7B.n_params == 6_738_415_616
    assert scaling.model_memory_bytes(scaling.LLAMA2_7B.n_params, "bfloat16") == pytest.approx(13.48e9, rel=1e-3)


def test_smollm2_shape_counts_the_tensors_of_the_shipped_gguf():
    gguf = pytest.importorskip("gguf")
    from course_lib import pretrained

    reader = gguf.GGUFReader(str(pretrained.smollm2_gguf_path()))
    total = sum(int(tensor.n_elements) for tensor in reader.tensors)
    assert scaling.SMOLLM2_135M.n_params == total == 134_515_008


def test_kv_cache_of_llama2_7b_at_4096_tokens_is_two_gib_in_bf16():
    # 2 (k and v) x 32 layers x 32 heads x 128 dims x 4096 positions x 2 bytes
    assert scaling.kv_cache_bytes(32, 32, 128, 4096, batch=1, dtype="bf16") == 2 * 32 * 32 * 128 * 4096 * 2 == 2**31
    assert scaling.kv_cache_bytes(32, 32, 128, 4096, batch=8, dtype="bf16") == 8 * 2**31


def test_kv_cache_formula_equals_the_cache_transformers_builds():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                         num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        cache = model(torch.randint(0, 64, (2, 11)), use_cache=True).past_key_values
    tensors = [t for layer in cache.layers for t in (layer.keys, layer.values)]
    measured = sum(t.numel() * t.element_size() for t in tensors)
    assert measured == scaling.kv_cache_bytes(3, 2, 8, seq_len=11, batch=2, dtype="float32")


def test_activation_estimate_by_hand():
    # one layer, d = 4, 2 tokens, batch 1: 2 x 4 x 34 bytes; unfused attention adds 2 x 5 x heads x 2 per token
    assert scaling.activation_bytes(1, 4, 2, 1, n_heads=2) == 2 * 4 * 34
    assert scaling.activation_bytes(1, 4, 2, 1, n_heads=2, flash_attention=False) == 2 * (4 * 34 + 5 * 2 * 2)
    assert scaling.activation_bytes(3, 4, 2, 5, n_heads=2) == 3 * 5 * 2 * 4 * 34
    assert scaling.activation_bytes(3, 4, 2, 5, n_heads=2, dtype="float32") == 2 * 3 * 5 * 2 * 4 * 34


def test_measured_saved_activations_count_what_autograd_keeps():
    # y = relu(x @ W): autograd keeps x for W's gradient and relu's output; W is a parameter, not counted.
    linear = torch.nn.Linear(16, 8, bias=False)
    model = torch.nn.Sequential(linear, torch.nn.ReLU())
    x = torch.randn(4, 16)
    assert scaling.saved_activation_bytes(model, x) == (4 * 16 + 4 * 8) * 4
    with torch.no_grad():  # measured even when called under no_grad
        assert scaling.saved_activation_bytes(model, x) == (4 * 16 + 4 * 8) * 4


def test_what_fits_an_a10g_for_a_7b_model():
    shape = scaling.LLAMA2_7B
    serve = sum(scaling.inference_memory_bytes(shape, "bfloat16", seq_len=4096).values())
    full = sum(scaling.finetuning_memory_bytes(shape, "full", seq_len=512).values())
    lora = sum(scaling.finetuning_memory_bytes(shape, "lora", seq_len=512).values())
    qlora = sum(scaling.finetuning_memory_bytes(shape, "qlora", seq_len=512).values())
    assert serve < scaling.A10G_BYTES < full  # 13.5 GB + 2.1 GB fits; 16 bytes/param (108 GB) does not
    assert qlora < lora < scaling.A10G_BYTES
    adapters = scaling.lora_parameter_count(32, 4096, 8, 2)
    lora_parts = scaling.finetuning_memory_bytes(shape, "lora", rank=8)
    assert lora_parts["optimizer states"] == adapters * 12 and lora_parts["gradients"] == adapters * 2
    qlora_parts = scaling.finetuning_memory_bytes(shape, "qlora", rank=8)
    base = shape.n_params * (0.5 + (8 / 64 + 32 / (64 * 256)) / 8)
    assert qlora_parts["weights"] == pytest.approx(base + adapters * 2)


@pytest.mark.parametrize("call, message", [
    (lambda: scaling.training_state_bytes(1e9, "adamw"), "recipe: expected one of"),
    (lambda: scaling.training_state_bytes(-1, "fp32 adam"), "n_params: expected a positive number"),
    (lambda: scaling.kv_cache_bytes(32, 32, 128, 0), "seq_len: expected a positive int, got 0"),
    (lambda: scaling.kv_cache_bytes(32, 32, 128, 16, dtype="int3"), "dtype: expected one of"),
    (lambda: scaling.activation_bytes(2, 64, 16, batch=1.5), "batch: expected a positive int, got 1.5"),
    (lambda: scaling.finetuning_memory_bytes(scaling.LLAMA2_7B, "prefix"), "method: expected one of"),
    (lambda: scaling.TransformerShape("x", 2, 100, 3, 1, 8, 10), "d_model % n_heads == 0"),
    (lambda: scaling.inference_memory_bytes(7e9), "shape: expected a TransformerShape, got float"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.parametrize("seq_len", [-1, 0, 2.5, True])
def test_kv_cache_bytes_refuses_a_token_count_that_is_not_a_positive_int(seq_len):
    with pytest.raises(ValueError, match=f"seq_len: expected a positive int, got {seq_len!r}"):
        scaling.kv_cache_bytes(32, 8, 128, seq_len)


def test_the_34_bytes_per_width_are_the_tensors_a_layer_keeps_for_backward():
    # Korthikanti et al. (2022), section 4.1, in 16-bit (2 bytes a value, 1 byte a dropout-mask value):
    attention = 2 + 4 + 2 + 2 + 1  # q/k/v input, q and k, v, out-projection input, dropout mask
    feed_forward = 2 + 8 + 8 + 1  # input, GeLU input and output (4·d wide), dropout mask
    norms = 2 + 2  # the two layer norms' inputs
    assert (scaling.ATTENTION_BYTES_PER_WIDTH, scaling.MLP_BYTES_PER_WIDTH, scaling.NORM_BYTES_PER_WIDTH) == (
        attention, feed_forward, norms)
    assert scaling.ACTIVATION_BYTES_PER_WIDTH == 34
    parts = scaling.activation_bytes_per_token(d_model=64, n_heads=4, seq_len=10, flash_attention=False)
    assert parts == {"attention": 11 * 64, "feed-forward": 19 * 64, "layer norms": 4 * 64,
                     "attention scores": (2 + 1 + 2) * 4 * 10}  # softmax output, its dropout mask, dropout output
    assert scaling.activation_bytes_per_token(64, 4, 10)["attention scores"] == 0  # a fused kernel keeps none
    with pytest.raises(ValueError, match="d_model: expected a positive int"):
        scaling.activation_bytes_per_token(0)
