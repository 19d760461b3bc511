"""SFT with the loss on the answer only (prompt masked) vs on every token: notebook 08's masking ablation.

Notebook 08 fine-tunes the tiny GPT on data/instructions.jsonl with the prompt's targets masked
(IGNORE_INDEX), so the loss grades the answer only. This script trains the notebook's SFT recipe
(300 steps, batches of 16 random pairs, AdamW lr 1e-3, seed s for the batches and the dropout) once
masked and once unmasked per seed, and measures each model on the held-out split: the share of the
checkable tasks it solves (greedy, `instruct.score`) and its mean loss on the answer tokens of every
held-out pair (the same tokens for both, so the two losses compare). It writes data/sft_masking.csv,
which notebook 08 reads. Seed 0 masked is the notebook's own SFT model.

    nice env COURSE_THREADS=1 .venv/bin/python scripts/sft_masking.py            # 3 seeds x 2: ~5 min, 1 thread
    .venv/bin/python scripts/sft_masking.py --seeds 0 --steps 5 --tasks 3 --out /tmp/try.csv   # a quick try
"""

from __future__ import annotations

import argparse
import copy
import csv
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's course_lib, even if another one is installed

import torch  # noqa: E402

from course_lib import data, instruct, runtime, train  # noqa: E402

STEPS, BATCH, LR = 300, 16, 1e-3  # notebook 08's SFT under the cpu profile
OUT = ROOT / "data" / "sft_masking.csv"


@torch.no_grad()
def answer_loss(model, tok, pairs, context_length: int) -> float:
    """Mean cross-entropy on the answer tokens (prompt masked) of `pairs`, in one batch."""
    inputs, targets = instruct.sft_batch(tok, pairs, context_length)
    return model.eval().loss(inputs, targets).item()


def run(gpt, tok, rows: list[dict], seed: int, mask_prompt: bool, steps: int, n_tasks: int) -> dict:
    """Notebook 08's SFT of a copy of `gpt` with one seed, and what it scores on the held-out split."""
    runtime.set_seed(seed)  # after loading the model, as in the notebook
    pairs = [(r["instruction"], r["response"]) for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    ctx = gpt.config.context_length
    pick = random.Random(seed)
    model = copy.deepcopy(gpt)
    train.train(model, lambda: instruct.sft_batch(tok, pick.sample(pairs, BATCH), ctx, mask_prompt=mask_prompt),
                steps=steps, lr=LR, progress=False)
    checkable = [r for r in test if "task" in r][:n_tasks]
    solved, _ = instruct.score(model.eval(), tok, checkable)
    return {"seed": seed, "loss on": "answer only" if mask_prompt else "every token", "steps": steps,
            "held-out tasks": len(checkable), "solved": round(solved, 4),
            "held-out answer loss": round(answer_loss(model, tok, [(r["instruction"], r["response"]) for r in test],
                                                      ctx), 4)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--tasks", type=int, default=60, help="held-out checkable tasks to score (60 = all)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        parser.error(f"--out: {args.out} exists; pass --force to overwrite it")
    started, results = time.time(), []
    gpt, tok = train.load_tiny_gpt()
    rows = data.read_jsonl("instructions.jsonl")
    for seed in args.seeds:
        for mask_prompt in (True, False):
            results.append(run(gpt, tok, rows, seed, mask_prompt, args.steps, args.tasks))
            print(results[-1], f"{(time.time() - started) / 60:.1f} min", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        f.write(f"# written by: python scripts/sft_masking.py --seeds {' '.join(map(str, args.seeds))} "
                f"--steps {args.steps} --tasks {args.tasks}; CPU ({platform.machine()}), "
                f"{runtime.CPU_THREADS} torch thread(s), torch {torch.__version__}, "
                f"{(time.time() - started) / 60:.0f} min\n")
        writer = csv.DictWriter(f, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)


if __name__ == "__main__":
    main()
