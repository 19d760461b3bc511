"""LoRA from scratch (Hu et al., 2021): freeze W₀, learn a low-rank update ΔW = B·A beside it.

Notebook 08 builds it and checks it against `peft`: `LoRALinear` wraps one frozen `nn.Linear`,
`apply_lora` swaps it in for the layers you name, `merge_lora` folds B·A back into W₀ so the
adapted model costs nothing extra at inference, `count_parameters` shows how few weights train.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn

from course_lib.validation import check_choice, check_int, check_number, check_type

_RANK_EXPECTED = "a positive int (LoRA's r, e.g. 4 or 8)"


class LoRALinear(nn.Module):
    """h = W₀x + (α/r)·B·A·x with W₀ frozen, A (r×in) random and B (out×r) zero.

    B = 0 makes the wrapped layer compute exactly what it did before, so training starts from the
    pre-trained model; α/r keeps the update's size comparable when you change the rank.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float = 1.0, dropout: float = 0.0):
        super().__init__()
        check_type("base", base, nn.Linear, "a torch.nn.Linear")
        check_int("rank", rank, low=1, what=_RANK_EXPECTED)
        check_number("alpha", alpha, positive=True, what="an int or float")
        self.base = base
        for parameter in self.base.parameters():
            parameter.requires_grad_(False)
        self.rank, self.alpha = rank, float(alpha)
        self.scaling = self.alpha / rank
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear (and peft) initialise A
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def delta_weight(self) -> Tensor:
        """The update ΔW = (α/r)·B·A, shaped like W₀ (out × in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def merged(self) -> nn.Linear:
        """A plain `nn.Linear` with W = W₀ + ΔW: same outputs, no extra matrix products at inference."""
        linear = nn.Linear(self.in_features, self.out_features, bias=self.base.bias is not None,
                           device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                linear.bias.copy_(self.base.bias)
        return linear

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}, scaling={self.scaling:g}"


def linear_layer_names(model: nn.Module) -> list[str]:
    """The last name part of every `nn.Linear` in `model` ('q_proj', 'lm_head', ...): what LoRA can target."""
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, nn.Linear) and name})


def _matches(name: str, targets: Iterable[str]) -> bool:
    return any(name == t or name.endswith("." + t) for t in targets)


def apply_lora(model: nn.Module, rank: int, alpha: float, target_modules: Iterable[str],
               dropout: float = 0.0) -> nn.Module:
    """Wrap every `nn.Linear` whose name ends in one of `target_modules` in a `LoRALinear`, freeze the rest.

    Changes `model` in place and returns it; afterwards only the A and B matrices are trainable
    (what `peft.get_peft_model` does with a `LoraConfig`).
    """
    check_int("rank", rank, low=1, what=_RANK_EXPECTED)
    check_number("alpha", alpha, positive=True, what="an int or float")
    if isinstance(target_modules, str):
        target_modules = [target_modules]
    targets = list(target_modules)
    if not targets:
        raise ValueError("target_modules: expected at least one layer name such as 'q_proj', got none")
    available = linear_layer_names(model)
    unknown = [t for t in targets if not any(_matches(n, [t]) for n, m in model.named_modules()
                                             if isinstance(m, nn.Linear))]
    if unknown:
        raise ValueError(f"target_modules: no nn.Linear named {unknown} in this model; "
                         f"the linear layers it has are {available}")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    chosen = [name for name, module in model.named_modules()
              if isinstance(module, nn.Linear) and _matches(name, targets)]
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), rank, alpha, dropout))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every `LoRALinear` in `model` by its merged `nn.Linear` (in place; returns the model)."""
    found = [(name, module) for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    if not found:
        raise ValueError("model: has no LoRALinear layers to merge (call apply_lora first)")
    for name, module in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.merged())
    return model


def lora_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """Only the adapter weights (every A and B): what a LoRA checkpoint holds, a tiny file."""
    return {name: p.detach().clone() for name, p in model.named_parameters()
            if name.endswith("lora_A") or name.endswith("lora_B")}


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters in `model` (each shared tensor once); only those with requires_grad if asked."""
    check_type("model", model, nn.Module, "a torch.nn.Module")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def fine_tuning_bytes(n_params: int, n_trainable: int, recipe: str = "fp32 adam") -> dict[str, float]:
    """Memory for the model's state while fine-tuning, activations left out: every weight, and for each
    trainable one its gradient and the optimizer's state, at the bytes per parameter of `recipe`
    (`scaling.TRAINING_BYTES_PER_PARAM`; "fp32 adam": 4 + 4 + 8). Full fine-tuning trains all `n_params`;
    LoRA only its A and B matrices, so the gradients and the optimizer state shrink to almost nothing."""
    from course_lib.scaling import TRAINING_BYTES_PER_PARAM

    check_int("n_params", n_params, low=1, what="a positive int")
    check_int("n_trainable", n_trainable, low=0, what="an int >= 0")
    if n_trainable > n_params:
        raise ValueError(f"n_trainable: expected at most n_params={n_params:,}, got {n_trainable:,}")
    per = TRAINING_BYTES_PER_PARAM[check_choice("recipe", recipe, sorted(TRAINING_BYTES_PER_PARAM))]
    parts = {"weights": n_params * per["weights"], "gradients": n_trainable * per["gradients"],
             "optimizer state": n_trainable * per["optimizer states"]}
    return {**parts, "total": sum(parts.values())}


def copy_lora_to_peft(model: nn.Module, peft_model: nn.Module, adapter: str = "default") -> int:
    """Copy every A and B of our `model` into the same layers of a `peft` LoRA model; returns how many.

    With identical weights the two must compute identical outputs: notebook 08's check against peft.
    """
    ours = {name: module for name, module in model.named_modules() if isinstance(module, LoRALinear)}
    copied = 0
    for name, module in peft_model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        if not isinstance(lora_a, nn.ModuleDict) or adapter not in lora_a:
            continue
        match = [n for n in ours if name == n or name.endswith("." + n)]
        if len(match) != 1:
            raise ValueError(f"peft_model: layer {name!r} has no single LoRALinear counterpart in model "
                             f"(ours: {sorted(ours)})")
        with torch.no_grad():
            lora_a[adapter].weight.copy_(ours[match[0]].lora_A)
            module.lora_B[adapter].weight.copy_(ours[match[0]].lora_B)
        copied += 1
    if copied != len(ours):
        raise ValueError(f"peft_model: adapted {copied} layers, ours adapts {len(ours)}; "
                         "use the same target_modules in both")
    return copied
