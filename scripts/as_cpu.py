"""Run a command as an older CPU would: `python scripts/as_cpu.py old pytest --nbval notebooks`.

Stored notebook outputs must be the same on every CPU a learner has. The low digits of float
results depend on which vector instructions torch (ATen), MKL, oneDNN and numpy pick at run time;
these variables make them pick older ones on this machine, so a difference shows here first:

- `old`:  no AVX at all in torch's own kernels, SSE4.2 in MKL, SSE4.1 in oneDNN, no AVX-512 in numpy
          (what CI's portability pass uses);
- `avx2`: AVX2 everywhere, no AVX-512 (a typical laptop of the last ten years).

`python scripts/as_cpu.py old --print` prints the settings as `env NAME=value ...` for a shell line.
"""

from __future__ import annotations

import os
import sys

LEVELS = {
    "old": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def numpy_avx512_features() -> list[str]:
    """numpy's run-time dispatched AVX-512 kernels that this CPU would use (numpy refuses unknown names)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # not numpy 2, or no numpy: nothing to switch off
        return []
    return [f for f in __cpu_dispatch__ if ("AVX512" in f or f == "X86_V4") and __cpu_features__.get(f)]


def settings(level: str) -> dict[str, str]:
    if level not in LEVELS:
        raise SystemExit(f"level: expected one of {sorted(LEVELS)}, got {level!r}")
    env = dict(LEVELS[level])
    avx512 = numpy_avx512_features()
    if avx512:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(avx512)
    return env


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    env = settings(argv[0])
    if argv[1:] == ["--print"]:
        print("env " + " ".join(f"{k}='{v}'" for k, v in env.items()))
        return 0
    os.execvpe(argv[1], argv[1:], {**os.environ, **env})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
