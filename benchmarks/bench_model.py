"""Is course_lib.model.GPT as fast as Hugging Face's GPT2LMHeadModel to train, and how much does the KV cache save?

1. One training step (forward, backward, AdamW update) of `model.GPT` and of `transformers`'
   `GPT2LMHeadModel` built from the same configuration (the tiny GPT's: vocab 4,096, d_model 128,
   4 blocks, 4 heads, context 256; dropout 0 for both), on the same batches. The two run in turns
   within each repeat, so a busy machine slows both alike; the ratio is the median of per-repeat ratios.
2. Greedy generation of 256 new tokens by `model.GPT` with and without the KV cache (context 512,
   so the cache never has to slide), checked to give identical tokens, at each model size the
   course uses (`CACHE_SIZES`).

    python benchmarks/bench_model.py [--repeat 5] [--steps 5] [--batch 8] [--new-tokens 256]

Targets: our training step at least 1.2x as fast as GPT2LMHeadModel's; the cache at least 5x faster at every size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's course_lib

import torch  # noqa: E402

from course_lib import runtime  # noqa: E402
from course_lib.model import GPT, GPTConfig  # noqa: E402

CONFIG = dict(vocab_size=4096, context_length=256, d_model=128, n_layers=4, n_heads=4, dropout=0.0)
# (d_model, blocks) of the GPTs the course trains and generates with: notebooks 06-07's small ones,
# the tiny GPT (07-08), and the widest, the gpu profile's
CACHE_SIZES = ((64, 2), (128, 4), (256, 4))


def step_timer(model, ids: torch.Tensor, loss_fn):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = loss_fn(model, ids)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def ours_loss(model, ids):
    return model.loss(ids[:, :-1], ids[:, 1:])


def hf_loss(model, ids):
    return model(input_ids=ids[:, :-1], labels=ids[:, :-1].clone()).loss  # HF shifts the labels itself


def timed(fn, times: int) -> float:
    start = time.perf_counter()
    for _ in range(times):
        fn()
    return (time.perf_counter() - start) / times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="repeats; medians are reported")
    parser.add_argument("--steps", type=int, default=5, help="training steps timed per repeat and model")
    parser.add_argument("--batch", type=int, default=8, help="sequences per training batch")
    parser.add_argument("--new-tokens", type=int, default=256, help="tokens generated per run")
    args = parser.parse_args(argv)
    from transformers import GPT2Config, GPT2LMHeadModel

    runtime.set_seed(0)
    config = GPTConfig(**CONFIG)
    ours = GPT(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = GPT2LMHeadModel(GPT2Config(vocab_size=config.vocab_size, n_positions=config.context_length,
                                        n_embd=config.d_model, n_layer=config.n_layers, n_head=config.n_heads,
                                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    ours.load_state_dict(GPT.from_hf_gpt2(hf).state_dict())  # same weights: same work, same numbers
    ids = torch.randint(0, config.vocab_size, (args.batch, config.context_length + 1))
    with torch.no_grad():
        same = torch.allclose(ours(ids[:, :-1]), hf(ids[:, :-1]).logits, atol=1e-4)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; config {CONFIG}; batch "
          f"{args.batch} x {config.context_length}; {ours.num_parameters():,} parameters each; same logits: {same}")
    print(f"HF attention implementation: {getattr(hf.config, '_attn_implementation', '?')}")

    steps = {"course_lib GPT": step_timer(ours.train(), ids, ours_loss),
             "HF GPT2LMHeadModel": step_timer(hf.train(), ids, hf_loss)}
    for step in steps.values():
        step()  # warm-up
    train_times: dict[str, list[float]] = {name: [] for name in steps}
    for repeat in range(args.repeat):
        for name, step in (steps.items() if repeat % 2 == 0 else reversed(list(steps.items()))):
            train_times[name].append(timed(step, args.steps))
        print(f"  repeat {repeat + 1}: " + ", ".join(f"{n} {t[-1] * 1e3:.0f} ms/step" for n, t in train_times.items()),
              flush=True)

    cache_ratios, all_identical = {}, True
    for d_model, n_layers in CACHE_SIZES:
        runtime.set_seed(0)
        size_config = GPTConfig(**{**CONFIG, "d_model": d_model, "n_layers": n_layers, "context_length": 512})
        generator_model = GPT(size_config).eval()
        prompt = torch.randint(0, config.vocab_size, (1, 16))
        with_cache = generator_model.generate(prompt, args.new_tokens, use_cache=True)
        without = generator_model.generate(prompt, args.new_tokens, use_cache=False)
        all_identical &= torch.equal(with_cache, without)
        gen_times: dict[str, list[float]] = {"with KV cache": [], "recomputing": []}
        for repeat in range(args.repeat):
            for name, use in (("with KV cache", True), ("recomputing", False)):
                gen_times[name].append(timed(lambda: generator_model.generate(prompt, args.new_tokens,
                                                                              use_cache=use), 1))
        cache_ratios[(d_model, n_layers)] = (statistics.median(gen_times["with KV cache"]),
                                             statistics.median(gen_times["recomputing"]),
                                             statistics.median(r / c for c, r in zip(gen_times["with KV cache"],
                                                                                     gen_times["recomputing"])))
        print(f"  d_model {d_model}, {n_layers} blocks: " + ", ".join(f"{n} {statistics.median(t):.2f} s"
                                                                      for n, t in gen_times.items()), flush=True)

    train_ratio = statistics.median(h / o for o, h in zip(train_times["course_lib GPT"], train_times["HF GPT2LMHeadModel"]))
    print(f"\nmedians of {args.repeat} repeats, side by side:")
    print(f"  training step   course_lib GPT {statistics.median(train_times['course_lib GPT']) * 1e3:7.0f} ms   "
          f"HF GPT2LMHeadModel {statistics.median(train_times['HF GPT2LMHeadModel']) * 1e3:7.0f} ms   "
          f"HF/ours = {train_ratio:.2f}x  (target >= 1.2: {'met' if train_ratio >= 1.2 else 'NOT met'})")
    for (d_model, n_layers), (cached, recomputed, ratio) in cache_ratios.items():
        print(f"  {args.new_tokens} new tokens, d_model {d_model:3d}, {n_layers} blocks: with KV cache {cached:5.2f} s, "
              f"recomputing {recomputed:5.2f} s, speed-up = {ratio:4.1f}x  "
              f"(target >= 5: {'met' if ratio >= 5 else 'NOT met'})")
    print(f"  identical tokens with and without the cache at every size: {all_identical}")
    return 0 if (same and all_identical) else 1


if __name__ == "__main__":
    raise SystemExit(main())
