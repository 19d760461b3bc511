"""How much faster is course_lib.tokenizer's BPE trainer than the plain recount trainer, and than HF?

Trains on the same text (the first 1,000,000 characters of the Python-docs corpus) to the same
vocabulary (2,048 = 256 bytes + 1,792 merges), checks that the two course trainers learn identical
merges, and prints median wall times and their ratios, each repeat running the trainers side by side
so a busy machine slows all of them alike. Hugging Face `tokenizers` (Rust) trains with the same
byte-level GPT-2 pre-tokenization; its merges differ only where counts tie (it breaks ties its own way).

    python benchmarks/bench_tokenizer.py [--chars 1000000] [--vocab-size 2048] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's course_lib

from course_lib import data, runtime  # noqa: E402
from course_lib.tokenizer import train_merges, train_merges_plain, word_counts  # noqa: E402


def hf_train(text: str, vocab_size: int):
    """Hugging Face `tokenizers` byte-level BPE trained on `text`; returns its merges as byte pairs."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=[])
    tokenizer.train_from_iterator([text], trainer=trainer)
    return tokenizer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--vocab-size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    runtime.configure_offline()
    text = data.python_docs_corpus(args.chars)
    n_merges = args.vocab_size - 256
    words = word_counts(text)
    print(f"text: {len(text):,} characters ({len(text.encode()):,} bytes), {sum(words.values()):,} chunks, "
          f"{len(words):,} distinct; vocab {args.vocab_size:,} = 256 bytes + {n_merges:,} merges; "
          f"{os.cpu_count()} CPUs, HF threads: {os.environ.get('RAYON_NUM_THREADS', 'all')}")
    times: dict[str, list[float]] = {"plain recount": [], "course_lib (incremental)": [], "HF tokenizers (Rust)": []}
    merges: dict = {}
    for repeat in range(args.repeat):
        for name, fn in (("plain recount", lambda: train_merges_plain(word_counts(text), n_merges)),
                         ("course_lib (incremental)", lambda: train_merges(word_counts(text), n_merges)),
                         ("HF tokenizers (Rust)", lambda: hf_train(text, args.vocab_size))):
            start = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - start)
            merges[name] = result
        print(f"  repeat {repeat + 1}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()), flush=True)
    same = merges["plain recount"] == merges["course_lib (incremental)"]
    print(f"identical merges (plain vs course_lib): {same} ({len(merges['plain recount']):,} merges)")
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"median of {args.repeat}:")
    for name, seconds in medians.items():
        print(f"  {name:26s} {seconds:8.2f} s")
    # ratios of times measured side by side in the same repeat, then their median
    ours = times["course_lib (incremental)"]
    speed_up = statistics.median(p / o for p, o in zip(times["plain recount"], ours))
    hf_ratio = statistics.median(o / h for o, h in zip(ours, times["HF tokenizers (Rust)"]))
    print(f"speed-up of course_lib over the plain recount trainer: {speed_up:.1f}x, median of per-repeat ratios"
          f"  (target >= 10x: {'met' if speed_up >= 10 else 'NOT met'})")
    print(f"HF tokenizers is {hf_ratio:.1f}x faster than course_lib, median of per-repeat ratios "
          "(every time includes pre-tokenizing the text with the GPT-2 regex)")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
