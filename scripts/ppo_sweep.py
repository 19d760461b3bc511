"""PPO over seeds, learning rates and KL coefficients β: the measurements behind notebook 08, section 4.

Rebuilds notebook 08's SFT model and reward model with the notebook's recipe (seed 0, 300 SFT steps,
250 reward-model steps), then runs the notebook's PPO (4 prompts × 8 samples, 32 new tokens) for each
(reward, β, learning rate, seed) and scores every policy greedily on the first `--n-score` held-out
checkable tasks (60 = all), with the task checker (`instruct.check_answer`, the truth) and the reward model.

data/ppo_sweep.csv was made in three parts, run side by side on one thread each, then merged:

    env COURSE_THREADS=1 .venv/bin/python scripts/ppo_sweep.py --cache /tmp/sweep/cache --rewards reward_model \
        --betas 0.0 0.1 0.3 --lrs 2e-4 5e-5 --seeds 0 1 2 3 4 --n-score 60 --out /tmp/sweep/partA.csv
    ... --rewards reward_model --betas 0.0 0.1 0.3 --lrs 2e-5 --seeds 0 1 2 3 4 --n-score 60 --out /tmp/sweep/partB.csv
    ... --starts early --rewards checker --betas 0.1 --lrs 2e-5 5e-5 2e-4 --seeds 0 1 2 3 4 --n-score 60 \
        --out /tmp/sweep/partC.csv
    .venv/bin/python scripts/ppo_sweep.py --merge /tmp/sweep/part?.csv --out data/ppo_sweep.csv

`--starts early` starts from the SFT model after 100 of its 300 steps and `--rewards checker` uses
the checker as the reward. Each part's first line (starting with #) says how it was produced, and the
merged file keeps them all; notebook 08 reads it with `pandas.read_csv(..., comment="#")`. One run
took about 50 s (reward model) to 75 s (checker) on one thread of a 2-core CPU.
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib import data, instruct, rlhf, runtime, train


def build_models(early_steps: int = 100, sft_steps: int = 300, rm_steps: int = 250, cache: Path | None = None):
    """Notebook 08's tokenizer, SFT models (after `early_steps` and after `sft_steps`) and reward model,
    trained the way its cells train them; kept in `cache` (a folder) if given."""
    gpt, tok = train.load_tiny_gpt()
    rows = data.read_jsonl("instructions.jsonl")
    if cache is not None and (cache / "models.pt").exists():
        return (gpt, tok, *torch.load(cache / "models.pt", weights_only=False), rows)
    train_rows = [r for r in rows if r["split"] == "train"]
    runtime.set_seed(0)
    pairs = [(r["instruction"], r["response"]) for r in train_rows]
    pick_rng = random.Random(0)
    sft_model = copy.deepcopy(gpt)
    optimizer = torch.optim.AdamW(sft_model.parameters(), lr=1e-3, weight_decay=0.0)  # as train.train makes it

    def sft_batch():
        return instruct.sft_batch(tok, pick_rng.sample(pairs, 16), gpt.config.context_length)

    history = train.train(sft_model, sft_batch, steps=early_steps, lr=1e-3, optimizer=optimizer, progress=False)
    early_model = copy.deepcopy(sft_model).eval()
    train.train(sft_model, sft_batch, steps=sft_steps - early_steps, lr=1e-3, optimizer=optimizer, progress=False,
                history=history)
    sft_model.eval()

    prefs = [p for p in data.read_jsonl("preferences.jsonl") if p["split"] == "train"]
    runtime.set_seed(0)
    reward_model = rlhf.ScalarHead(copy.deepcopy(sft_model), d_model=gpt.config.d_model)
    ctx = gpt.config.context_length
    pick_rng = random.Random(0)

    def preference_batch():
        batch = pick_rng.sample(prefs, 16)
        return (instruct.encode_answers(tok, [(p["prompt"], p["chosen"]) for p in batch], ctx),
                instruct.encode_answers(tok, [(p["prompt"], p["rejected"]) for p in batch], ctx))

    def reward_loss(model, batch):
        chosen, rejected = batch
        return rlhf.pairwise_loss(model.score(*chosen), model.score(*rejected))

    train.train(reward_model, preference_batch, steps=rm_steps, lr=3e-4, loss_fn=reward_loss, progress=False)
    reward_model.eval()
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        torch.save((early_model, sft_model, reward_model), cache / "models.pt")
    return gpt, tok, early_model, sft_model, reward_model, rows


def checker_reward_fn(tok, rows):
    """reward(ids, lengths): 1 where the answer passes the task's checker, else 0 (notebook 08's)."""
    by_instruction = {r["instruction"]: r for r in rows if "task" in r}

    def reward(ids, lengths):
        scores = []
        for row, n in zip(ids.tolist(), lengths.tolist()):
            prompt, _, reply = tok.decode(row[:n]).partition("### Response:\n")
            task = by_instruction[prompt.removeprefix("### Instruction:\n").strip()]
            scores.append(float(instruct.check_answer(task, instruct.cut_answer(reply))))
        return torch.tensor(scores)

    return reward


def run_ppo(start, tok, reward_fn, prompts_from, beta, lr, seed, steps=50, d_model=128):
    """Notebook 08's `run_ppo`: the same sampling, optimizer and PPOConfig."""
    runtime.set_seed(seed)
    policy = rlhf.ScalarHead(copy.deepcopy(start), d_model=d_model, detach=True)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    config = rlhf.PPOConfig(samples_per_prompt=8, max_new_tokens=32, beta=beta)
    prompt_rng, generator = random.Random(seed), torch.Generator().manual_seed(seed)
    eos = instruct.end_id(tok)
    history = []
    for _ in range(steps):
        prompts = [tok.encode(instruct.format_prompt(r["instruction"])) for r in prompt_rng.sample(prompts_from, 4)]
        history.append(rlhf.ppo_step(policy, start, reward_fn, prompts, optimizer, config, eos_id=eos,
                                     generator=generator))
    return policy.body.eval(), history


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/ppo_sweep.csv"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lrs", type=float, nargs="+", default=[2e-5, 5e-5, 2e-4])
    parser.add_argument("--betas", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--rewards", nargs="+", default=["checker", "reward_model"])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--starts", nargs="+", default=["sft"], help="sft (300 steps) and/or early (100 steps)")
    parser.add_argument("--n-score", type=int, default=30)
    parser.add_argument("--cache", type=Path, default=None, help="a folder to keep the trained SFT and reward models")
    parser.add_argument("--merge", type=Path, nargs="+", default=None,
                        help="instead of running: join these CSVs (parts run in parallel) into --out")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        parser.error(f"--out: {args.out} exists; pass --force to overwrite it")
    if args.merge:  # every part's "#" line is kept: together they say how each row was produced
        parts = [p.read_text().splitlines() for p in args.merge]
        if len({part[1] for part in parts}) != 1:
            parser.error(f"--merge: the parts have different columns: {sorted({part[1] for part in parts})}")
        notes = [line for part in parts for line in part if line.startswith("#")]
        rows = [line for part in parts for line in part[2:] if not line.startswith("#")]
        args.out.write_text("\n".join([*notes, parts[0][1], *rows]) + "\n")
        return

    started = time.time()
    gpt, tok, early_model, sft_model, reward_model, rows = build_models(cache=args.cache)
    starts = {"sft": sft_model, "early": early_model}
    gen_train = [r for r in rows if r["split"] == "train" and "task" in r]
    held_out = [r for r in rows if r["split"] == "test" and "task" in r][:args.n_score]
    ctx = gpt.config.context_length

    @torch.no_grad()
    def judge(model):
        solved, details = instruct.score(model, tok, held_out)
        ids, lengths = instruct.encode_answers(tok, [(d["instruction"], d["answer"]) for d in details], ctx)
        return solved, reward_model.score(ids, lengths).mean().item()

    def rm_reward(ids, lengths):
        with torch.no_grad():
            return reward_model.score(ids, lengths)

    rewards = {"checker": checker_reward_fn(tok, rows), "reward_model": rm_reward}
    before = {name: judge(starts[name]) for name in args.starts}
    print("before PPO (solved, reward-model score):", before, flush=True)
    fields = ["start", "reward", "beta", "lr", "seed", "steps", "n_score", "sft_solved", "solved", "sft_rm_score",
              "rm_score", "first10_train_reward", "last10_train_reward", "last10_kl"]
    results = []
    for start in args.starts:
      for reward in args.rewards:
        for beta in args.betas:
            for lr in args.lrs:
                for seed in args.seeds:
                    t0 = time.time()
                    sft_solved, sft_proxy = before[start]
                    policy, history = run_ppo(starts[start], tok, rewards[reward], gen_train, beta, lr, seed,
                                              args.steps)
                    solved, proxy = judge(policy)
                    row = {"start": start, "reward": reward, "beta": beta, "lr": lr, "seed": seed,
                           "steps": args.steps, "n_score": len(held_out),
                           "sft_solved": round(sft_solved, 4), "solved": round(solved, 4),
                           "sft_rm_score": round(sft_proxy, 4), "rm_score": round(proxy, 4),
                           "first10_train_reward": round(sum(h["score"] for h in history[:10]) / 10, 4),
                           "last10_train_reward": round(sum(h["score"] for h in history[-10:]) / 10, 4),
                           "last10_kl": round(sum(h["kl"] for h in history[-10:]) / 10, 4)}
                    results.append(row)
                    print(row, f"{time.time() - t0:.0f} s", flush=True)
                    write(args.out, fields, results, started, argv)


def write(path: Path, fields: list[str], results: list[dict], started: float, argv: list[str] | None) -> None:
    command = " ".join(sys.argv[1:] if argv is None else argv)
    header = (f"# scripts/ppo_sweep.py {command}: notebook 08's SFT and reward model, PPO 4 prompts x 8 samples, "
              f"32 new tokens; solved = share of the held-out checkable tasks (n_score) answered right, greedy; "
              f"measured on a CPU ({platform.machine()}, {runtime.CPU_THREADS} torch threads, "
              f"torch {torch.__version__}) in {(time.time() - started) / 60:.0f} min\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        f.write(header)
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(results)


if __name__ == "__main__":
    main()
