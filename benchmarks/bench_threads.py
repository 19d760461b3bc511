"""One torch thread or two for the course's small models, on a quiet machine and on a busy one?

The test suite runs two notebooks at once with one torch thread each (conftest.py). This measures
whether one thread costs the small models anything, and how each setting copes when another process
keeps one core busy (a shared laptop, a CI machine running two jobs). For each model, a training step
(forward, backward, AdamW) is timed in turns at 1 and 2 threads; "busy" runs the same while a child
process spins on one core. Medians of `--repeat` runs of `--steps` steps each; ratios side by side.

    python benchmarks/bench_threads.py [--repeat 5] [--steps 10]

The two models are those of the notebooks' longest training cells: notebook 07's 8-block GPT
(d_model 64, context 64, batch 16) and the tiny GPT fine-tuned in notebook 08 (d_model 128,
4 blocks, context 256, batch 16 × 64 tokens).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's course_lib

import torch  # noqa: E402

from course_lib.model import GPT, GPTConfig  # noqa: E402

MODELS = {
    "07 deep stack (8 blocks, d 64)": (GPTConfig(vocab_size=4096, context_length=64, d_model=64, n_layers=8, n_heads=4), 16, 64),
    "08 tiny GPT (4 blocks, d 128)": (GPTConfig(vocab_size=4096, context_length=256, d_model=128, n_layers=4, n_heads=4), 16, 64),
}


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def step_seconds(config: GPTConfig, batch: int, length: int, threads: int, steps: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GPT(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, config.vocab_size, (batch, length + 1), generator=torch.Generator().manual_seed(0))
    x, y = ids[:, :-1], ids[:, 1:]
    model.loss(x, y).backward()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.loss(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    print(f"training step, median of {args.repeat} runs of {args.steps} steps (ms); 'busy': another process spins on one core")
    print(f"{'model':32s} {'load':>5s} {'1 thread':>9s} {'2 threads':>10s} {'2 / 1':>6s}")
    for name, (config, batch, length) in MODELS.items():
        for load in ("quiet", "busy"):
            burner = None
            if load == "busy":
                burner = multiprocessing.Process(target=spin, args=(3600,), daemon=True)
                burner.start()
            times = {1: [], 2: []}
            try:
                for _ in range(args.repeat):
                    for threads in (1, 2):  # in turns, so a change in the machine's load hits both
                        times[threads].append(step_seconds(config, batch, length, threads, args.steps))
            finally:
                if burner is not None:
                    burner.terminate()
                    burner.join()
            one, two = statistics.median(times[1]) * 1e3, statistics.median(times[2]) * 1e3
            print(f"{name:32s} {load:>5s} {one:9.1f} {two:10.1f} {two / one:6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
