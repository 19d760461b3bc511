"""How fast does SmolLM2 generate in fp32, bf16, our int8 / int4 layers, torchao int8 and llama.cpp Q4_1?

Builds every variant once, then in each repeat times all of them side by side (greedy generation of
`--tokens` new tokens after the same prompt, and one forward pass over the held-out text), so a busy
machine slows them alike. Prints the medians and each one's ratio to transformers fp32. Also times a
single linear layer's matrix multiply for one token (decoding) in each format, a 1024 × 1024 matrix
product in fp32, bf16 and fp16, and prints each variant's size saved as safetensors.

    python benchmarks/bench_quantization.py [--tokens 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's course_lib

import course_lib  # noqa: E402,F401  (first: quiets torchao's import-time log lines)
from benchmarks import measure  # noqa: E402
from course_lib import data, pretrained, runtime  # noqa: E402
from course_lib import quantization as Q  # noqa: E402

PROMPT = "The lighthouse keeper climbed the stairs and"


def build_variants(model):
    import torch
    from torch import nn
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    def quantized(bits):
        m = copy.deepcopy(model)
        Q.quantize_linears(m, bits, group_size=32)
        return m

    torchao = copy.deepcopy(model)
    quantize_(torchao, Int8WeightOnlyConfig(),
              filter_fn=lambda mod, name: isinstance(mod, nn.Linear) and "lm_head" not in name)
    return {"transformers fp32": model, "transformers bf16": copy.deepcopy(model).to(torch.bfloat16),
            "ours int8": quantized(8), "ours int4": quantized(4), "torchao int8": torchao}


def layer_times(model, repeat: int) -> dict[str, float]:
    """Median seconds of one token through SmolLM2's first feed-forward up-projection, per format."""
    import torch

    layer = model.model.layers[0].mlp.up_proj
    x = torch.randn(1, layer.in_features)
    layers = {"fp32": (layer, x), "bf16": (copy.deepcopy(layer).to(torch.bfloat16), x.bfloat16()),
              "int8": (Q.Int8Linear(layer), x), "int4": (Q.Int4Linear(layer, 32), x)}
    out = {}
    with torch.no_grad():
        for name, (module, inp) in layers.items():
            out[name] = runtime.median_time(lambda m=module, i=inp: [m(i) for _ in range(100)], repeat=repeat) / 100
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    runtime.set_seed(0)
    import torch

    from course_lib.llamacpp import LlamaCpp

    model, tokenizer = pretrained.load_smollm2()
    ids = tokenizer(data.read_text("heldout_paragraphs.txt"), return_tensors="pt").input_ids[0]
    variants = build_variants(model)
    llm = LlamaCpp(pretrained.smollm2_gguf_path(), n_ctx=512, n_threads=2)
    speeds = {name: [] for name in [*variants, "llama.cpp Q4_1"]}
    forwards = {name: [] for name in variants}
    for _ in range(args.repeat):
        for name, m in variants.items():
            speeds[name].append(measure.hf_tokens_per_second(m, tokenizer, PROMPT, args.tokens))
            start = time.perf_counter()
            measure.hf_logits(m, ids)
            forwards[name].append(time.perf_counter() - start)
        speeds["llama.cpp Q4_1"].append(llm.tokens_per_second(PROMPT, args.tokens))
    llm.close()
    base = statistics.median(speeds["transformers fp32"])
    base_forward = statistics.median(forwards["transformers fp32"])
    print(f"SmolLM2-135M, greedy generation of {args.tokens} tokens and one forward pass over {len(ids)} tokens, "
          f"median of {args.repeat}, {runtime.CPU_THREADS} threads")
    print(f"{'variant':>20} {'tokens/s':>9} {'× fp32':>7} {'forward s':>10} {'× fp32':>7}")
    for name, values in speeds.items():
        speed = statistics.median(values)
        line = f"{name:>20} {speed:9.1f} {speed / base:7.2f}"
        if name in forwards:
            seconds = statistics.median(forwards[name])
            line += f" {seconds:10.2f} {base_forward / seconds:7.2f}"
        print(line)
    print("\nsize of each variant saved as safetensors (tied weights once):")
    for name, m in variants.items():
        print(f"{name:>20}: {measure.saved_size_bytes(m) / 1e6:7.1f} MB")
    print("\na 1024 × 1024 matrix product on this CPU (no native fp16 arithmetic on most CPUs):")
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        print(f"{str(dtype)[6:]:>9}: {measure.matmul_tflops(dtype, 'cpu', n=1024, repeat=args.repeat) * 1e3:7.1f} GFLOP/s")
    print("\none token through a 576 → 1536 linear layer (median µs):")
    times = layer_times(model, args.repeat)
    for name, seconds in times.items():
        print(f"{name:>6}: {seconds * 1e6:7.1f} µs  ({times['fp32'] / seconds:.2f}× fp32's speed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
