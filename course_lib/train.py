"""A small training loop and safetensors checkpoints, used from notebook 07 on.

`train` runs AdamW for a number of steps with a progress bar (`course_lib.progress`: the stored notebook keeps its final state), keeps the loss history,
evaluates every so often and can record each block's gradient norm (notebook 07's deep-stack
experiments). `save_checkpoint` / `load_checkpoint` store weights as safetensors with the model's
configuration inside, and never overwrite an existing file unless asked; `load_tiny_gpt` loads the
GPT that ships in `data/` (notebook 07 pre-trains it, notebook 08 starts from it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

from course_lib import data
from course_lib.runtime import device_of, to_device
from course_lib.validation import check_non_negative_int

TINY_GPT = "tiny_gpt.safetensors"
TINY_GPT_CONFIG = "tiny_gpt.json"


def random_windows(tokens: Tensor, batch_size: int, context_length: int,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """A language-modelling batch: `batch_size` random windows of a 1-D token tensor as inputs `x`
    (batch, context_length) and the same windows shifted by one token as targets `y`."""
    if not isinstance(tokens, Tensor) or tokens.dim() != 1:
        raise ValueError(f"tokens: expected a 1-D tensor of token ids, got "
                         f"{tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__}")
    if len(tokens) < context_length + 2:
        raise ValueError(f"tokens: expected more than context_length + 1 = {context_length + 1} tokens, got {len(tokens)}")
    starts = torch.randint(0, len(tokens) - context_length - 1, (batch_size,), generator=generator,
                           device=generator.device if generator is not None else tokens.device).to(tokens.device)
    offsets = torch.arange(context_length + 1, device=tokens.device)
    windows = tokens[starts[:, None] + offsets]
    return windows[:, :-1], windows[:, 1:]


def block_grad_norms(model: nn.Module) -> list[float]:
    """The L2 norm of the gradient of each block's parameters (`model.blocks`), bottom block first."""
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise ValueError(f"model: expected a model with `.blocks` (a GPT), got {type(model).__name__}")
    norms = []
    for block in blocks:
        grads = [p.grad.detach().flatten() for p in block.parameters() if p.grad is not None]
        norms.append(float(torch.cat(grads).norm()) if grads else 0.0)
    return norms


def _default_loss(model: nn.Module, batch) -> Tensor:
    return model.loss(*batch)


@dataclass
class History:
    """What a training run leaves behind: the loss of every step, evaluations, samples, grad norms."""

    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_losses: list[float] = field(default_factory=list)
    samples: list[tuple[int, str]] = field(default_factory=list)
    grad_norms: list[list[float]] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)


def learning_rate(step: int, steps: int, lr: float, warmup: int = 0, schedule: str = "cosine",
                  min_ratio: float = 0.1) -> float:
    """Linear warm-up for `warmup` steps, then constant or cosine decay to `min_ratio * lr`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "constant":
        return lr
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(model: nn.Module, get_batch: Callable[[], Any], steps: int, lr: float = 1e-3,
          weight_decay: float = 0.0, grad_clip: float | None = 1.0, warmup: int = 0, schedule: str = "constant",
          loss_fn: Callable[[nn.Module, Any], Tensor] = _default_loss,
          eval_fn: Callable[[nn.Module], float] | None = None, eval_every: int = 0,
          sample_fn: Callable[[nn.Module], str] | None = None, record_grad_norms: bool = False,
          optimizer: torch.optim.Optimizer | None = None, progress: bool = True, desc: str = "training",
          history: History | None = None) -> History:
    """Train `model` for `steps` steps of AdamW on batches from `get_batch()`; return the History.

    Each batch is moved to the model's device first (`runtime.to_device`), so `get_batch` may build it
    on the CPU.
    `loss_fn(model, batch)` defaults to `model.loss(*batch)`. Every `eval_every` steps (and at the
    end) `eval_fn(model)` and `sample_fn(model)` run in eval mode without gradients. Pass the
    `history` of an earlier run to continue its curves.
    """
    check_non_negative_int("steps", steps, "an int >= 0")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule: expected 'constant' or 'cosine', got {schedule!r}")
    if eval_every < 0:
        raise ValueError(f"eval_every: expected 0 (only at the end) or a positive number of steps, got {eval_every}")
    from course_lib.progress import bar as progress_bar

    history = History() if history is None else history
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    start = len(history.losses)

    def evaluate(step: int) -> None:
        if eval_fn is None and sample_fn is None:
            return
        was_training = model.training
        model.eval()
        with torch.no_grad():
            history.eval_steps.append(step)
            if eval_fn is not None:
                history.eval_losses.append(float(eval_fn(model)))
            if sample_fn is not None:
                history.samples.append((step, sample_fn(model)))
        model.train(was_training)

    device = device_of(model)
    model.train()
    bar = progress_bar(range(steps), desc=desc, disable=not progress)
    for i in bar:
        step_lr = learning_rate(i, steps, lr, warmup, schedule)
        for group in optimizer.param_groups:
            group["lr"] = step_lr
        loss = loss_fn(model, to_device(get_batch(), device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if record_grad_norms:
            history.grad_norms.append(block_grad_norms(model))
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        history.losses.append(float(loss.detach()))
        history.learning_rates.append(step_lr)
        if eval_every and (i + 1) % eval_every == 0 and i + 1 < steps:
            evaluate(start + i + 1)
        if progress and i % 10 == 0:
            bar.set_postfix_str(f"loss ≈ {history.losses[-1]:.3f}")
    bar.close()
    evaluate(start + steps)
    return history


@torch.no_grad()
def mean_loss(model: nn.Module, batches: Iterable[Any], loss_fn: Callable[[nn.Module, Any], Tensor] = _default_loss) -> float:
    """Average loss over fixed batches (an evaluation set), in eval mode and without gradients."""
    was_training = model.training
    model.eval()
    device = device_of(model)
    losses = [float(loss_fn(model, to_device(batch, device))) for batch in batches]
    model.train(was_training)
    if not losses:
        raise ValueError("batches: expected at least one batch, got none")
    return sum(losses) / len(losses)


def _unique_state(model: nn.Module) -> dict[str, Tensor]:
    """The state dict with each shared tensor once (a tied output layer is the embedding matrix)."""
    seen, state = set(), {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key in seen:
            continue
        seen.add(key)
        state[name] = tensor.detach().cpu().contiguous()
    return state


def _sorted_metadata(blob: bytes) -> bytes:
    """safetensors writes its text metadata in hash-map order, which changes from run to run; put the
    keys in sorted order (same length, same tensors) so equal weights give byte-identical files."""
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + size])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    if len(text) > size:  # pragma: no cover - the same content re-serialised is never longer
        return blob
    return blob[:8] + text.ljust(size, b" ") + blob[8 + size:]


def save_checkpoint(model: nn.Module, path: str | Path, overwrite: bool = False,
                    metadata: dict[str, str] | None = None) -> Path:
    """Write the weights to `path` as safetensors, with `model.config` (if any) in the header.

    An existing file is never replaced silently: pass `overwrite=True` to replace it.
    """
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path: expected a file name ending in .safetensors, got {path.name!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: a checkpoint is already there; pass overwrite=True to replace it "
                              "or choose another name")
    header = {"format": "pt", "model": type(model).__name__}
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        header["config"] = json.dumps(config.to_dict(), sort_keys=True)
    header.update(metadata or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_sorted_metadata(save(_unique_state(model), metadata=header)))
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The text header of a safetensors file (model class, configuration, anything saved with it)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def load_checkpoint(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Load a checkpoint written by `save_checkpoint`. Without `model`, a `GPT` is built from the
    configuration stored in the file. Every weight must match (tied weights are restored by sharing)."""
    from safetensors.torch import load_file

    from course_lib.model import GPT, GPTConfig
    from course_lib.seq2seq import Seq2SeqConfig, Seq2SeqTransformer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    if model is None:
        meta = read_metadata(path)
        kinds = {"GPT": (GPT, GPTConfig), "Seq2SeqTransformer": (Seq2SeqTransformer, Seq2SeqConfig)}
        if meta.get("model") not in kinds or "config" not in meta:
            raise ValueError(f"{path}: no model configuration in its header (model={meta.get('model')!r}); "
                             "pass the model to load into")
        cls, config_cls = kinds[meta["model"]]
        model = cls(config_cls(**json.loads(meta["config"])))
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    shared = set(model.state_dict()) - set(_unique_state(model))
    missing = [k for k in missing if k not in shared]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the model: missing {missing}, unexpected {unexpected}")
    return model.eval()


def load_tiny_gpt():
    """The tiny GPT pre-trained on the Python docs (data/tiny_gpt.safetensors) and its tokenizer.

    Returns `(model, tokenizer)`; `scripts/train_tiny_gpt.py` rebuilds the checkpoint bit for bit.
    Both files are checked first: the checkpoint against the sha256 in data/tiny_gpt.json, the
    tokenizer against data/checksums.json.
    """
    from course_lib.tokenizer import BPETokenizer

    info = json.loads(data.read_text(TINY_GPT_CONFIG))
    path = data.checked_path(TINY_GPT, info["sha256"])
    model = load_checkpoint(path)
    tokenizer = BPETokenizer.load(data.checked_path(read_metadata(path)["tokenizer"]))
    return model, tokenizer
