"""A tiny Llama checkpoint, made on the fly, that checks the LitGPT recipe of llama7b.sh on a CPU.

ec2/check_litgpt.sh runs each step with the Python that has what the step needs:

    LitGPT venv   tokenizer WORK    a SentencePiece tokenizer (the 7B model's kind) in WORK/checkpoint,
                                    and the prompt as LitGPT encodes it, in WORK/prompt.json
    course venv   model WORK        a Llama of 2 layers with random weights (transformers), saved as
                                    open_llama_7b is (sharded pytorch_model-*.bin and their index),
                                    and its greedy continuation of the prompt, in WORK/expected.json
    LitGPT venv   litgpt ARGS...    the `litgpt` command with one more model config, "tiny-llama"
                                    (LitGPT picks the converter's config by name; this one has
                                    open_llama_7b's architecture at a tiny size)
    LitGPT venv   compare WORK OUT  LitGPT's generated text (OUT) equals transformers' greedy one

The reference is transformers' Llama: a wrong weight mapping in the conversion shows up as a
different greedy continuation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PROMPT = "le chat est sous la table"
NEW_TOKENS = 8
# open_llama_7b's architecture (LLaMAMLP, RMSNorm 1e-6, no bias, full rotary, untied head), tiny.
TINY = dict(n_layer=2, n_embd=64, n_head=4, n_query_groups=4, intermediate_size=176,
            vocab_size=320, padded_vocab_size=320, block_size=64)
SPECIAL = {"<unk>": 0, "<s>": 1, "</s>": 2}
MIN_MARGIN = 0.05   # greedy choices at least this far ahead of the runner-up, so no float noise flips them
TEXT = """\
le chat est sous la table. the cat is under the table.
le chien est sur la chaise. the dog is on the chair.
la souris est dans la maison. the mouse is in the house.
un oiseau chante dans le jardin. a bird sings in the garden.
Hello, my name is Ada and I write programs that translate sentences.
"""


def fail(message: str) -> None:
    print(f"tiny_llama.py: {message}", file=sys.stderr)
    raise SystemExit(1)


def tokenizer(work: Path) -> None:
    """Train a byte-fallback BPE SentencePiece model, as Llama's, and encode the prompt with LitGPT."""
    import sentencepiece as spm
    from litgpt.tokenizer import Tokenizer

    checkpoint = work / "checkpoint"
    checkpoint.mkdir(parents=True, exist_ok=False)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXT.splitlines() * 20), model_prefix=str(checkpoint / "tokenizer"),
        vocab_size=TINY["vocab_size"], model_type="bpe", byte_fallback=True, character_coverage=1.0,
        unk_id=SPECIAL["<unk>"], bos_id=SPECIAL["<s>"], eos_id=SPECIAL["</s>"], pad_id=-1,
        minloglevel=2)
    (checkpoint / "tokenizer.vocab").unlink()
    # What open_llama_7b's tokenizer_config.json says: a LlamaTokenizer that adds <s>.
    (checkpoint / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
         "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, indent=2))
    ids = Tokenizer(checkpoint).encode(PROMPT).tolist()
    if ids[:1] != [SPECIAL["<s>"]] or len(ids) < 3:
        fail(f"LitGPT encoded {PROMPT!r} as {ids}: expected <s> (id 1) then the prompt's tokens")
    (work / "prompt.json").write_text(json.dumps({"prompt": PROMPT, "ids": ids}))
    print(f"tokenizer: {TINY['vocab_size']} pieces; {PROMPT!r} -> {ids}")


def model(work: Path) -> None:
    """A random tiny Llama in transformers, saved like open_llama_7b, and its greedy continuation."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    prompt_ids = json.loads((work / "prompt.json").read_text())["ids"]
    config = LlamaConfig(
        vocab_size=TINY["padded_vocab_size"], hidden_size=TINY["n_embd"],
        intermediate_size=TINY["intermediate_size"], num_hidden_layers=TINY["n_layer"],
        num_attention_heads=TINY["n_head"], num_key_value_heads=TINY["n_query_groups"],
        max_position_embeddings=TINY["block_size"], rms_norm_eps=1e-6, tie_word_embeddings=False,
        initializer_range=0.5, bos_token_id=SPECIAL["<s>"], eos_token_id=SPECIAL["</s>"])
    for seed in range(50):
        torch.manual_seed(seed)
        hf = LlamaForCausalLM(config).eval()
        ids, margins = list(prompt_ids), []
        with torch.no_grad():
            for _ in range(NEW_TOKENS):
                top2 = hf(torch.tensor([ids])).logits[0, -1].topk(2)
                margins.append((top2.values[0] - top2.values[1]).item())
                ids.append(top2.indices[0].item())
        new = ids[len(prompt_ids):]
        if min(margins) >= MIN_MARGIN and not set(new) & set(SPECIAL.values()):
            break
    else:
        fail(f"no seed below 50 gives a greedy continuation with margins >= {MIN_MARGIN} and no special token")
    checkpoint = work / "checkpoint"
    config.save_pretrained(checkpoint)
    GenerationConfig(bos_token_id=SPECIAL["<s>"], eos_token_id=SPECIAL["</s>"]).save_pretrained(checkpoint)
    # Two shards and an index, as open_llama_7b ships its weights (the converter's path for .bin files).
    state = {k: v.contiguous() for k, v in hf.state_dict().items()}
    names = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
              "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    weight_map = {}
    for file, keys in shards.items():
        torch.save({k: state[k] for k in keys}, checkpoint / file)
        weight_map.update(dict.fromkeys(keys, file))
    total = sum(v.numel() * v.element_size() for v in state.values())
    (checkpoint / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (work / "expected.json").write_text(json.dumps({"seed": seed, "ids": ids, "margins": margins}))
    n_params = sum(v.numel() for v in state.values())
    print(f"model: transformers Llama, {n_params:,} parameters (seed {seed}); greedy continuation {new},"
          f" smallest margin {min(margins):.3f}")


def litgpt(argv: list[str]) -> None:
    """The `litgpt` command, with the tiny config added to those it knows by name."""
    from litgpt import config
    from litgpt.__main__ import main

    tiny = {**config.name_to_config["open_llama_7b"], "name": "tiny-llama",
            "hf_config": {"org": "course", "name": "tiny-llama"}, **TINY}
    config.configs.append(tiny)
    config.name_to_config["tiny-llama"] = tiny
    sys.argv = ["litgpt", *argv]
    main()


def compare(work: Path, output: Path) -> None:
    """LitGPT's greedy text must be transformers' greedy text (the last line `litgpt generate` prints)."""
    import torch
    from litgpt.tokenizer import Tokenizer

    ids = json.loads((work / "expected.json").read_text())["ids"]
    expected = Tokenizer(work / "checkpoint").decode(torch.tensor(ids))
    printed = output.read_text()
    print(f"    transformers, greedy: {expected!r}\n    litgpt generate:      {printed.splitlines()[-1] if printed else ''!r}")
    if not printed.endswith(expected + "\n"):
        fail("LitGPT's generated text is not transformers' greedy continuation of the same weights")
    print("    ok: LitGPT converted the tiny Llama and generated exactly what transformers generates")


def ours(work: Path) -> None:
    """The course's own Llama reads LitGPT's converted file (notebook 09's way to the 7B model) and must
    continue the prompt greedily exactly as transformers did with the original weights."""
    import torch

    from course_lib import llama

    expected = json.loads((work / "expected.json").read_text())["ids"]
    prompt = json.loads((work / "prompt.json").read_text())["ids"]
    config = llama.LlamaConfig(vocab_size=TINY["padded_vocab_size"], d_model=TINY["n_embd"], n_layers=TINY["n_layer"],
                               n_heads=TINY["n_head"], n_kv_heads=TINY["n_query_groups"],
                               d_ff=TINY["intermediate_size"], rope_theta=10_000.0, norm_eps=1e-6,
                               max_seq_len=TINY["block_size"], tie_embeddings=False)
    model = llama.load_litgpt_checkpoint(work / "checkpoint" / "lit_model.pth", config, dtype=torch.float32)
    got = model.generate(torch.tensor([prompt]), len(expected) - len(prompt))[0].tolist()
    print(f"    transformers, greedy: {expected[len(prompt):]}\n    course_lib.llama:     {got[len(prompt):]}")
    if got != expected:
        fail("course_lib.llama.load_litgpt_checkpoint: our Llama on LitGPT's file does not continue the prompt "
             "as transformers does on the original weights")
    print("    ok: our Llama, loaded from LitGPT's lit_model.pth, writes exactly transformers' tokens")


def main(argv: list[str]) -> None:
    usage = "usage: tiny_llama.py tokenizer WORK | model WORK | litgpt ARGS... | compare WORK OUTPUT | ours WORK"
    if not argv:
        fail(usage)
    command, rest = argv[0], argv[1:]
    if command == "litgpt":
        litgpt(rest)
    elif command in ("tokenizer", "model", "ours") and len(rest) == 1:
        {"tokenizer": tokenizer, "model": model, "ours": ours}[command](Path(rest[0]))
    elif command == "compare" and len(rest) == 2:
        compare(Path(rest[0]), Path(rest[1]))
    else:
        fail(f"{usage}\n  got: {' '.join(argv)}")


if __name__ == "__main__":
    main(sys.argv[1:])
