"""Rebuild data/tiny_gpt.safetensors and data/tiny_gpt.json: the tiny GPT pre-trained on the Python docs.

A 1.35M-parameter `course_lib.model.GPT` (4 blocks, d_model 128, context 256) learns to predict the
next token of data/python_docs_corpus.txt, cut by the notebook-05 tokenizer (4,096 tokens). Everything
is seeded and runs on the CPU with 2 threads, so on the same torch version and the same kind of CPU
the same command writes the same bytes. Notebook 07 loads the result; notebook 08 starts from it.

    python scripts/train_tiny_gpt.py            # trains (about 20-40 min on 2 cores) and writes both files
    python scripts/train_tiny_gpt.py --check    # trains again and compares with the committed checkpoint
    python scripts/train_tiny_gpt.py --steps 20 --out /tmp/try.safetensors   # a quick try elsewhere
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's course_lib, even if another one is installed

import torch  # noqa: E402

from course_lib import data, runtime  # noqa: E402
from course_lib.model import GPT, GPTConfig  # noqa: E402
from course_lib.train import TINY_GPT, mean_loss, random_windows, save_checkpoint, train  # noqa: E402

CONFIG = GPTConfig(vocab_size=4096, context_length=256, d_model=128, n_layers=4, n_heads=4, dropout=0.1)
THREADS = 2  # the checkpoint was trained with 2 torch threads; another count changes its low bits
STEPS, BATCH, LR, WARMUP, WEIGHT_DECAY = 2000, 16, 3e-3, 100, 0.1
VALIDATION_SHARE, EVAL_EVERY, EVAL_BATCHES = 0.05, 250, 8
PROMPT, SAMPLE_TOKENS = 'def read_file(path):\n    """', 60


def corpus_ids(tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole corpus as token ids, split into training (first 95 %) and validation (last 5 %)."""
    ids = torch.tensor(tokenizer.encode(data.python_docs_corpus()), dtype=torch.long)
    split = int(len(ids) * (1 - VALIDATION_SHARE))
    return ids[:split], ids[split:]


def greedy_sample(model: GPT, tokenizer, prompt: str = PROMPT, n: int = SAMPLE_TOKENS) -> str:
    ids = torch.tensor([tokenizer.encode(prompt)])
    return tokenizer.decode(model.generate(ids, n, temperature=0.0)[0].tolist())


def build(steps: int, out: Path, overwrite: bool, progress: bool = True) -> dict:
    """Train from seed 0 and write the checkpoint to `out` and its JSON beside it; return the JSON."""
    runtime.set_seed(0, threads=THREADS)
    tokenizer = data.python_docs_tokenizer()
    train_ids, val_ids = corpus_ids(tokenizer)
    ctx = CONFIG.context_length
    val_generator = torch.Generator().manual_seed(1)
    val_batches = [random_windows(val_ids, BATCH, ctx, val_generator) for _ in range(EVAL_BATCHES)]
    model = GPT(CONFIG)
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=WEIGHT_DECAY)
    history = train(model, lambda: random_windows(train_ids, BATCH, ctx, generator), steps, lr=LR, warmup=WARMUP,
                    schedule="cosine", optimizer=optimizer, eval_fn=lambda m: mean_loss(m, val_batches),
                    eval_every=EVAL_EVERY, sample_fn=lambda m: greedy_sample(m, tokenizer, n=30),
                    progress=progress, desc="tiny GPT")
    model.eval()
    save_checkpoint(model, out, overwrite=overwrite, metadata={"tokenizer": data.PYTHON_DOCS_TOKENIZER})
    info = {
        "config": CONFIG.to_dict(),
        "tokenizer": data.PYTHON_DOCS_TOKENIZER,
        "parameters": model.num_parameters(),
        "training": {"steps": steps, "batch_size": BATCH, "context_length": ctx, "lr": LR, "warmup": WARMUP,
                     "schedule": "cosine", "weight_decay": WEIGHT_DECAY, "betas": [0.9, 0.95], "grad_clip": 1.0,
                     "train_tokens": len(train_ids), "validation_tokens": len(val_ids),
                     "tokens_seen": steps * BATCH * ctx, "seed": 0, "threads": THREADS,
                     "torch": torch.__version__},
        "history": {"loss": [round(x, 4) for x in history.losses], "eval_steps": history.eval_steps,
                    "eval_loss": [round(x, 4) for x in history.eval_losses],
                    "samples": [{"step": s, "text": t} for s, t in history.samples]},
        "sample": {"prompt": PROMPT, "max_new_tokens": SAMPLE_TOKENS, "greedy": greedy_sample(model, tokenizer)},
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
    }
    config_path = out.with_name(out.stem + ".json")
    if config_path.exists() and not overwrite:
        raise FileExistsError(f"{config_path}: already there; pass --overwrite to replace it")
    config_path.write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS, help=f"training steps (default {STEPS})")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / TINY_GPT, help="where to write the checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    parser.add_argument("--check", action="store_true", help="train into a temporary folder and compare with data/")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.check:
        shipped = ROOT / "data" / TINY_GPT
        with tempfile.TemporaryDirectory() as folder:
            info = build(args.steps, Path(folder) / TINY_GPT, overwrite=False, progress=not args.no_progress)
        same = shipped.is_file() and hashlib.sha256(shipped.read_bytes()).hexdigest() == info["sha256"]
        print(("identical to " if same else "DIFFERS from ") + f"data/{TINY_GPT} (sha256 {info['sha256'][:16]}...)")
        return 0 if same else 1
    info = build(args.steps, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, {info['parameters']:,} parameters) and "
          f"{args.out.with_name(args.out.stem + '.json').name}; final validation loss {info['history']['eval_loss'][-1]}")
    print("greedy sample:", repr(info["sample"]["greedy"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
