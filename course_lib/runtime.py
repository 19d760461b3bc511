"""Where the code runs and how reproducibly: device, seed, CPU/GPU profile, offline mode, timers.

Every notebook's setup cell calls `set_seed` and `profile()`; importing `course_lib` already
turns the Hugging Face libraries offline and quiets the loggers that would break nbval.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from course_lib.validation import check_choice, check_positive_int, check_type

PROFILES = ("cpu", "gpu")


def _threads_from_env() -> int:
    """COURSE_THREADS if set (the test suite runs two notebooks at once, one thread each), else 2."""
    value = os.environ.get("COURSE_THREADS", "2").strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"COURSE_THREADS: expected a positive whole number of threads, got {value!r}")
    return int(value)


# torch's CPU threads after `set_seed`: a fixed count makes a run repeat bit for bit on one machine.
CPU_THREADS = _threads_from_env()

_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",  # transformers / huggingface_hub never try the network
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # avoids the fork warning on stderr
    "ANONYMIZED_TELEMETRY": "False",
    "DO_NOT_TRACK": "1",
}
# Loggers that print timestamped lines on stderr at import time (torchao, torch's pytree
# deprecation notices); nbval compares stderr, so they must stay quiet.
_NOISY_LOGGERS = ("torchao", "torch.utils._pytree", "transformers", "accelerate", "httpx",
                  "sentence_transformers", "huggingface_hub", "peft", "trl")


def configure_offline() -> None:
    """Make Hugging Face libraries work from local files only (the course downloads nothing).

    Values already set in the environment are kept, so a learner can still opt in to the Hub.
    """
    for key, value in _OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def quiet_noisy_loggers(level: int = logging.ERROR) -> None:
    """Raise the level of loggers whose import-time chatter breaks nbval comparisons."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level)


def _torch():
    import torch  # imported lazily: `course_lib.runtime` is usable without torch

    return torch


_AUTO = "auto"


def set_seed(seed: int = 0, threads: int | None | str = _AUTO) -> None:
    """Seed Python, NumPy and torch; under the cpu profile also fix torch's CPU thread count.

    A fixed thread count makes a CPU run repeat bit for bit. `threads="auto"` (the default) means
    `CPU_THREADS` under the cpu profile and torch's own choice (every core) under the gpu profile,
    where the CPU only feeds the GPU; an int pins that many threads, None leaves torch's setting.
    """
    check_type("seed", seed, int, "an int")
    if threads == _AUTO:
        threads = CPU_THREADS if profile() == "cpu" else None
    check_positive_int("threads", threads, allow_none=True)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is in requirements.txt
        pass
    torch = _torch()
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)


def _wanted_profile() -> str:
    wanted = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if wanted:
        check_choice("COURSE_PROFILE", wanted, PROFILES)
    return wanted


def get_device() -> "torch.device":
    """Where the course's models and tensors go: the CPU under COURSE_PROFILE=cpu (even where a GPU is
    present, to reproduce the stored CPU outputs), CUDA under COURSE_PROFILE=gpu; unset, the best
    device here: CUDA, then Apple's MPS, then the CPU."""
    torch = _torch()
    wanted = _wanted_profile()
    if wanted == "cpu":
        return torch.device("cpu")
    if wanted == "gpu":
        profile()  # a clear error when there is no CUDA device
        return torch.device("cuda")
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_of(module) -> "torch.device":
    """The device a model's parameters live on, where new tensors made for it (a batch, a prompt's
    ids) go. A model without parameters, or a stand-in object that has none, is on the CPU."""
    torch = _torch()
    tensors = getattr(module, "parameters", None)
    for tensor in tensors() if callable(tensors) else ():
        return tensor.device
    buffers = getattr(module, "buffers", None)
    for tensor in buffers() if callable(buffers) else ():
        return tensor.device
    return torch.device("cpu")


def to_device(batch, device):
    """`batch` with every tensor in it (alone, or inside tuples, lists and dicts) moved to `device`."""
    torch = _torch()
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple keeps its type
        return type(batch)(*(to_device(item, device) for item in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch


def synchronize(device) -> None:
    """Wait until `device` has finished the work queued on it (CUDA and MPS run asynchronously), so a
    clock read afterwards times the work itself; nothing to wait for on the CPU."""
    torch = _torch()
    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


def profile() -> str:
    """`"gpu"` when CUDA is present, else `"cpu"`; the env variable COURSE_PROFILE overrides.

    Notebooks choose their sizes (model width, training steps) from this one value.
    """
    wanted = _wanted_profile()
    has_cuda = _torch().cuda.is_available()
    if not wanted:
        return "gpu" if has_cuda else "cpu"
    if wanted == "gpu" and not has_cuda:
        raise ValueError("COURSE_PROFILE: 'gpu' asked for, but torch sees no CUDA device here; "
                         "unset it or use COURSE_PROFILE=cpu")
    return wanted


def pick(cpu, gpu):
    """Choose a setting by profile: `pick(cpu=200, gpu=5000)` is 200 on a laptop, 5000 on a GPU."""
    return gpu if profile() == "gpu" else cpu


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of the packages a notebook depends on (printed in its setup cell)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if platform.system() == "Darwin" else peak / 1e3


@dataclass
class Timer:
    """Wall-clock seconds of a block: `with timed() as t: ...; t.seconds`."""

    start: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    timer = Timer()
    try:
        yield timer
    finally:
        timer.seconds = time.perf_counter() - timer.start


def median_time(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeat` runs: a noisy shared machine needs medians."""
    if repeat < 1:
        raise ValueError(f"repeat: expected >= 1, got {repeat}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]
