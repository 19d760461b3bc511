"""The tiny GPT shipped in data/ loads with plain safetensors, matches its JSON, and writes its stored sample."""

import hashlib
import json
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file

from course_lib import data
from course_lib.model import GPT, GPTConfig
from course_lib.train import TINY_GPT, TINY_GPT_CONFIG, load_checkpoint, load_tiny_gpt, read_metadata


@pytest.fixture(scope="module")
def info() -> dict:
    return json.loads(data.read_text(TINY_GPT_CONFIG))


def test_the_checkpoint_is_the_one_its_json_describes(info):
    path = data.data_path(TINY_GPT)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"]
    assert path.stat().st_size < 8_000_000  # a few MB
    header = read_metadata(path)
    assert json.loads(header["config"]) == info["config"]
    assert header["tokenizer"] == info["tokenizer"] == data.PYTHON_DOCS_TOKENIZER


def test_plain_safetensors_loads_every_weight_of_a_gpt_built_from_the_json(info):
    state = load_file(str(data.data_path(TINY_GPT)))
    model = GPT(GPTConfig.from_dict(info["config"]))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert unexpected == [] and missing == ["lm_head.weight"]  # tied to tok_emb.weight, stored once
    assert model.num_parameters() == info["parameters"]
    again = load_checkpoint(data.data_path(TINY_GPT))
    assert torch.equal(again.tok_emb.weight, state["tok_emb.weight"])
    assert again.lm_head.weight is again.tok_emb.weight


def test_the_tiny_gpt_writes_its_stored_greedy_sample(info):
    model, tokenizer = load_tiny_gpt()
    sample = info["sample"]
    ids = torch.tensor([tokenizer.encode(sample["prompt"])])
    out = model.generate(ids, sample["max_new_tokens"], temperature=0.0)
    assert tokenizer.decode(out[0].tolist()) == sample["greedy"]
    assert out.shape[1] == ids.shape[1] + sample["max_new_tokens"]


def test_the_tiny_gpt_learned_something(info):
    history = info["history"]
    assert history["loss"][0] > 8.0  # the untrained model: about log(4096) = 8.3, a uniform guess
    assert history["eval_loss"][-1] < history["loss"][0] - 3.0
    assert history["eval_loss"] == sorted(history["eval_loss"], reverse=True)  # validation loss only went down
    assert history["eval_loss"][-1] < 6.0  # far below log(4096) = 8.3 for guessing


def test_a_changed_tiny_gpt_checkpoint_is_refused_with_both_digests_and_the_fix(info, monkeypatch, tmp_path):
    for name in ("README.md", data.CHECKSUMS, TINY_GPT_CONFIG, TINY_GPT, data.PYTHON_DOCS_TOKENIZER):
        shutil.copy(data.data_path(name), tmp_path / name)
    changed = tmp_path / TINY_GPT
    raw = bytearray(changed.read_bytes())
    raw[-1] ^= 0xFF  # one byte of the last weight: the file still loads, with a wrong weight
    changed.write_bytes(bytes(raw))
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    actual = hashlib.sha256(bytes(raw)).hexdigest()
    with pytest.raises(ValueError, match=re.escape(f"{changed}: sha256 {actual[:16]}... does not match the expected "
                                                   f"{info['sha256'][:16]}...")
                       + r".*`git checkout data/tiny_gpt\.safetensors` or rebuild it with "
                         r"`python scripts/train_tiny_gpt\.py`"):
        load_tiny_gpt()
