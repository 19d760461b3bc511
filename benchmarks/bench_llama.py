"""How fast does course_lib.llama generate with its KV cache, next to transformers' `generate`?

Same model (SmolLM2-135M-Instruct, float32, our Llama holding a copy of transformers' weights), same
chat prompt, greedy decoding of the same number of new tokens (end-of-sequence ignored so both run
the full length), checked to produce identical tokens. Each repeat runs the contenders back to back,
so a busy machine slows them alike; medians and ratios are printed. Also shown: our Llama without
its cache (recomputing the whole sequence for every token), which is what the cache saves.

    python benchmarks/bench_llama.py [--new-tokens 64] [--repeat 5] [--threads 2] [--no-uncached]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's course_lib

import torch  # noqa: E402

from course_lib import pretrained, runtime  # noqa: E402
from course_lib.llama import Llama, LlamaConfig  # noqa: E402

PROMPT = "Explain in a few sentences why the sky is blue."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=runtime.CPU_THREADS)
    parser.add_argument("--no-uncached", action="store_true", help="skip our Llama without KV cache (slow)")
    args = parser.parse_args(argv)
    runtime.set_seed(0, threads=args.threads)
    hf_model, tokenizer = pretrained.load_smollm2()
    ours = Llama.from_hf_state_dict(LlamaConfig.from_hf(hf_model.config), hf_model.state_dict())
    text = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True,
                                         tokenize=False)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
    n = args.new_tokens
    print(f"SmolLM2-135M-Instruct float32, prompt {ids.shape[1]} tokens, {n} new tokens (greedy), "
          f"torch threads {torch.get_num_threads()} of {os.cpu_count()} CPUs, torch {torch.__version__}")

    contenders = {
        "transformers generate": lambda: hf_model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False),
        "our Llama, KV cache": lambda: ours.generate(ids, n),
    }
    if not args.no_uncached:
        contenders["our Llama, no cache"] = lambda: ours.generate(ids, n, use_cache=False)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    outputs = {}
    with torch.inference_mode():
        for fn in contenders.values():  # warm-up, not timed
            fn()
        for repeat in range(args.repeat):
            for name, fn in contenders.items():
                start = time.perf_counter()
                outputs[name] = fn()
                times[name].append(time.perf_counter() - start)
            print(f"  repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    reference = outputs["transformers generate"].tolist()
    same = all(out.tolist() == reference for out in outputs.values())
    print(f"identical tokens: {same}   reply: {tokenizer.decode(outputs['our Llama, KV cache'][0, ids.shape[1]:])!r}")
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["transformers generate"]
    print(f"\nmedian of {args.repeat} (tokens/s = new tokens / wall time, prompt included):")
    print(f"| contender | median s | tokens/s | speed vs transformers |\n|---|---|---|---|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds:.2f} | {n / seconds:.1f} | {base / seconds:.2f}x |")
    ratio = base / medians["our Llama, KV cache"]
    print(f"\nour Llama with KV cache vs transformers generate: {ratio:.2f}x "
          f"(goal >= 1.0: {'met' if ratio >= 1.0 else 'NOT met'})")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
