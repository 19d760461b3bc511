"""Scoring a prompt by the model's log-probabilities of a fixed set of answers (notebook 09).

Instead of generating a reply and parsing it, read the model's next-token distribution right after the
prompt and compare the log-probabilities of the candidate labels' first tokens ("positive" against
"negative"). The answer is always one of the labels, no sampling is involved, and the margin between
the two says how sure the model is. `calibrate` subtracts the scores the same prompt gets with a
content-free input ("N/A"), which removes the prompt's own lean towards one label.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from course_lib.runtime import device_of
from course_lib.validation import check_text


def label_token_ids(tokenizer, labels: Sequence[str]) -> list[int]:
    """The first token id of each label; two labels starting with the same token cannot be told apart."""
    if isinstance(labels, str) or len(labels) < 2:
        raise ValueError(f"labels: expected a list of at least two label strings, got {labels!r}")
    ids = []
    for label in labels:
        check_text("label", label)
        tokens = tokenizer(label, add_special_tokens=False)["input_ids"]
        if not tokens:
            raise ValueError(f"labels: {label!r} becomes no token at all")
        ids.append(tokens[0])
    if len(set(ids)) != len(ids):
        raise ValueError(f"labels: expected labels whose first tokens differ, got {labels!r} -> token ids {ids}")
    return ids


@torch.no_grad()
def label_logprobs(model, tokenizer, prompts: Sequence[str], labels: Sequence[str]) -> Tensor:
    """(len(prompts), len(labels)) log-probabilities of each label's first token right after each prompt.

    `prompts` are full prompt strings (e.g. `chat.render(...)`, which ends with the assistant's turn);
    `model` maps ids (1, length) to logits, like `course_lib.llama.Llama`.
    """
    if isinstance(prompts, str):
        raise TypeError("prompts: expected a list of prompt strings, got one str (wrap it in a list)")
    label_ids = torch.tensor(label_token_ids(tokenizer, labels))
    rows = []
    for i, prompt in enumerate(prompts):
        check_text(f"prompts[{i}]", prompt)
        ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]], device=device_of(model))
        logits = model(ids, last_only=True)[0, -1].float().cpu()
        rows.append(torch.log_softmax(logits, dim=-1)[label_ids])
    return torch.stack(rows) if rows else torch.empty(0, len(labels))


def calibrate(scores: Tensor, content_free: Tensor) -> Tensor:
    """Scores minus the scores of a content-free input (one row, or one per prompt): the prompt's own bias removed."""
    if not isinstance(scores, Tensor) or scores.dim() != 2:
        raise ValueError(f"scores: expected a (prompts, labels) tensor, got {getattr(scores, 'shape', type(scores).__name__)}")
    if not isinstance(content_free, Tensor) or content_free.shape[-1] != scores.shape[-1]:
        raise ValueError(f"content_free: expected {scores.shape[-1]} scores per row, got "
                         f"{getattr(content_free, 'shape', type(content_free).__name__)}")
    return scores - content_free.reshape(-1, scores.shape[-1])


def accuracy(scores: Tensor, labels: Sequence[str], answers: Sequence[str]) -> float:
    """Share of rows whose highest-scoring label is the right answer."""
    if scores.dim() != 2 or scores.shape != (len(answers), len(labels)):
        raise ValueError(f"scores: expected shape ({len(answers)}, {len(labels)}), got {tuple(scores.shape)}")
    unknown = set(answers) - set(labels)
    if unknown:
        raise ValueError(f"answers: {sorted(unknown)} are not among the labels {list(labels)}")
    chosen = [labels[i] for i in scores.argmax(-1).tolist()]
    return sum(c == a for c, a in zip(chosen, answers)) / len(answers) if answers else float("nan")
