"""Writing text one token at a time: the sampler and the generation loop every model of the course uses.

Notebook 07 builds them for the GPT; notebook 09's Llama uses the same two functions. A model only
needs `model(ids, cache=..., last_only=True)` (logits for the last position), `model.new_cache()`
(one `attention.KVCache` per block) and `model.context_length` (how many positions it can see).

- `sampling_probs`: next-token probabilities after temperature, top-k and top-p filtering.
- `sample_next`: one token per row: the likeliest (temperature 0) or a draw from those probabilities.
- `generate`: the loop: feed the new token, sample the next, stop at `eos_id` or `max_new_tokens`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course_lib.runtime import synchronize
from course_lib.validation import check_non_negative_int, check_positive_int, check_type


def _check_sampling(temperature, top_k, top_p) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
        raise ValueError(f"temperature: expected a number >= 0 (0 = greedy), got {temperature!r}")
    check_positive_int("top_k", top_k, allow_none=True)
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                              or not 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p: expected a probability in (0, 1], got {top_p!r}")


def sampling_probs(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> Tensor:
    """Next-token probabilities after temperature, then top-k, then top-p (nucleus) filtering.

    Dividing the logits by a temperature below 1 sharpens the distribution, above 1 flattens it.
    top-k keeps the k likeliest tokens; top-p keeps the likeliest tokens until their probabilities
    add up to at least `top_p`. The rest get probability 0.
    """
    _check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        raise ValueError("temperature: expected a positive number here (0 means greedy: use sample_next)")
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        sorted_probs = sorted_logits.softmax(dim=-1)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the more likely tokens
        drop_sorted = mass_before >= top_p  # already enough mass before this token: drop it
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits.softmax(dim=-1)


def sample_next(logits: Tensor, temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """One next token per row of `logits` (batch, vocab), as a (batch, 1) tensor of ids.

    temperature 0 is greedy (the likeliest token, the same on every run); otherwise a draw from
    `sampling_probs`. The draw happens where `generator` lives: a CPU generator gives the same
    tokens whether the model ran on the CPU or a GPU (given the same probabilities).
    """
    _check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = sampling_probs(logits, temperature, top_k, top_p)
    if generator is None or generator.device == probs.device:
        return torch.multinomial(probs, 1, generator=generator)
    return torch.multinomial(probs.to(generator.device), 1, generator=generator).to(probs.device)


@torch.no_grad()
def generate(model: nn.Module, ids: Tensor, max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, top_p: float | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None, eos_id: int | None = None) -> Tensor:
    """Append up to `max_new_tokens` tokens to `ids` (batch, length) and return all of them.

    With `use_cache` each step feeds only the new token and reuses the keys and values of the
    earlier ones; without, each step recomputes the whole sequence (same tokens, more work). Once
    the sequence outgrows `model.context_length`, both recompute on its last context_length tokens.
    Rows that produced `eos_id` keep emitting it; generation stops when every row has.
    The model is put in eval mode (no dropout) for the loop and given back in the mode it was in.
    """
    check_type("model", model, nn.Module, "a course_lib model (GPT, Llama)")
    if not isinstance(ids, Tensor) or ids.dim() != 2:
        raise ValueError(f"ids: expected a (batch, length) tensor of token ids, got "
                         f"{tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__}")
    if ids.shape[1] < 1:
        raise ValueError("ids: expected at least one token to start from, got length 0")
    check_non_negative_int("max_new_tokens", max_new_tokens, "an int >= 0")
    _check_sampling(temperature, top_k, top_p)
    context = model.context_length
    was_training = model.training
    model.eval()
    cache, fed = None, 0  # `fed`: how many tokens of `ids` the cache already holds
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    try:
        for _ in range(max_new_tokens):
            if use_cache and ids.shape[1] <= context:
                if cache is None:
                    cache, fed = model.new_cache(), 0
                logits = model(ids[:, fed:], cache=cache, last_only=True)[:, -1]
                fed = ids.shape[1]
            else:
                logits = model(ids[:, -context:], last_only=True)[:, -1]
            next_id = sample_next(logits, temperature, top_k, top_p, generator)
            if eos_id is not None:
                next_id = torch.where(done[:, None], torch.full_like(next_id, eos_id), next_id)
                done |= next_id[:, 0] == eos_id
            ids = torch.cat([ids, next_id], dim=1)
            if eos_id is not None and bool(done.all()):
                break
    finally:
        model.train(was_training)
    return ids


def generation_speed(model: nn.Module, ids: Tensor, new_tokens: int = 32) -> dict:
    """Greedy generation of exactly `new_tokens` tokens after `ids` with the KV cache, timed after one
    warm-up run: {"tokens_per_second", "seconds", "ids"}. On a GPU the clock waits for the GPU to finish."""
    import time

    check_positive_int("new_tokens", new_tokens)
    generate(model, ids, min(new_tokens, 4))  # warm-up: first-call allocations, kernel selection
    synchronize(ids.device)
    start = time.perf_counter()
    out = generate(model, ids, new_tokens)
    synchronize(ids.device)
    seconds = time.perf_counter() - start
    return {"tokens_per_second": new_tokens / seconds, "seconds": seconds, "ids": out}


__all__ = ["sampling_probs", "sample_next", "generate", "generation_speed"]
