"""Chat is isolated requests plus memory: a list of messages re-sent, whole, through the chat template.

Notebook 09 builds it. The model itself remembers nothing between two calls; `ChatSession` keeps
the history, renders it with the tokenizer's chat template into one prompt string, counts its
tokens, and when the history no longer fits the context window drops the oldest turns (optionally
replacing them with a summary) before asking the model for the next reply.
"""

from __future__ import annotations

import json
import re
from typing import Callable, Sequence

import torch

from course_lib.runtime import device_of
from course_lib.validation import check_choice, check_positive_int, check_text

ROLES = ("system", "user", "assistant")
ON_OVERFLOW = ("truncate", "summarize")
SUMMARY_PREFIX = "Summary of the earlier conversation: "


def message(role: str, content: str) -> dict[str, str]:
    """One chat message `{"role": ..., "content": ...}`, checked: a known role and non-empty text."""
    check_choice("role", role, ROLES)
    check_text("content", content)
    if not content.strip():
        raise ValueError(f"content: expected a non-empty message for role {role!r}, got {content!r}")
    return {"role": role, "content": content}


def check_messages(messages: Sequence[dict]) -> list[dict[str, str]]:
    """The messages as a fresh list of checked dicts; a system message may only come first."""
    if isinstance(messages, (str, dict)) or not isinstance(messages, Sequence):
        raise TypeError(f"messages: expected a list of {{'role', 'content'}} dicts, got {type(messages).__name__}")
    checked = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise ValueError(f"messages[{i}]: expected a dict with keys 'role' and 'content', got {m!r}")
        checked.append(message(m["role"], m["content"]))
        if m["role"] == "system" and i > 0:
            raise ValueError(f"messages[{i}]: a system message may only come first")
    return checked


def render(tokenizer, messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
    """The exact prompt string the model receives for `messages`: the tokenizer's chat template applied."""
    return tokenizer.apply_chat_template(check_messages(messages), add_generation_prompt=add_generation_prompt,
                                         tokenize=False)


def encode(tokenizer, messages: Sequence[dict]) -> list[int]:
    """Token ids of the rendered prompt (special tokens are already in the string)."""
    return tokenizer(render(tokenizer, messages), add_special_tokens=False)["input_ids"]


def count_tokens(tokenizer, messages: Sequence[dict]) -> int:
    """How many tokens the prompt for `messages` takes in the context window."""
    return len(encode(tokenizer, messages))


def complete(model, tokenizer, messages: Sequence[dict], max_new_tokens: int = 40, temperature: float = 0.0,
             top_p: float | None = None, generator: torch.Generator | None = None) -> str:
    """One stateless request: render `messages`, generate the assistant's reply, return it as text.

    `model` is a `course_lib.llama.Llama` (anything with its `generate`). Nothing is kept afterwards.
    """
    ids = torch.tensor([encode(tokenizer, messages)], device=device_of(model))
    out = model.generate(ids, max_new_tokens, temperature=temperature, top_p=top_p,
                         eos_id=tokenizer.eos_token_id, generator=generator)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def transcript(messages: Sequence[dict]) -> str:
    """Messages as plain 'role: text' lines, e.g. to ask a model to summarise them."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in check_messages(messages))


class ChatSession:
    """A conversation with memory: the history lives here and is re-sent in full with every request.

    `context_window` (tokens) defaults to the model's `max_seq_len`; `max_new_tokens` of it stay free
    for the reply. When the prompt would not fit, the oldest user/assistant turns are dropped
    (`on_overflow="truncate"`) or replaced by a summary in the system message (`"summarize"`),
    written by `summarizer(dropped_messages) -> str` (default: the model itself).
    """

    def __init__(self, model, tokenizer, system: str | None = None, context_window: int | None = None,
                 max_new_tokens: int = 40, on_overflow: str = "truncate",
                 summarizer: Callable[[list[dict]], str] | None = None, **generation):
        check_choice("on_overflow", on_overflow, ON_OVERFLOW)
        check_positive_int("max_new_tokens", max_new_tokens)
        if context_window is None:
            context_window = model.config.max_seq_len
        if not isinstance(context_window, int) or context_window <= max_new_tokens:
            raise ValueError(f"context_window: expected an int larger than max_new_tokens={max_new_tokens}, "
                             f"got {context_window!r}")
        self.model, self.tokenizer = model, tokenizer
        self.system = None if system is None else message("system", system)["content"]
        self.context_window, self.max_new_tokens = context_window, max_new_tokens
        self.on_overflow, self.generation = on_overflow, generation
        self.summarizer = summarizer or self._summarize_with_model
        self.turns: list[dict[str, str]] = []  # user and assistant messages, oldest first
        self.summary: str | None = None
        self.dropped: list[dict[str, str]] = []  # every message that no longer fits, oldest first

    @property
    def messages(self) -> list[dict[str, str]]:
        """What is sent: the system message (with the summary, if any), then the turns."""
        system = " ".join(part for part in (self.system, self.summary and SUMMARY_PREFIX + self.summary) if part)
        return ([message("system", system)] if system else []) + [dict(m) for m in self.turns]

    def add(self, role: str, content: str) -> None:
        """Append a user or assistant message to the history (the system message is set at creation)."""
        if role == "system":
            raise ValueError("role: 'system' is set once, with ChatSession(system=...); "
                             "add 'user' or 'assistant' messages")
        self.turns.append(message(role, content))

    def prompt(self) -> str:
        """The exact string the model receives next: the whole history through the chat template."""
        return render(self.tokenizer, self.messages)

    def n_tokens(self) -> int:
        """Tokens the next prompt takes (without the reply)."""
        return count_tokens(self.tokenizer, self.messages)

    def fits(self) -> bool:
        """Whether the next prompt plus `max_new_tokens` for the reply fit in the context window."""
        return self.n_tokens() + self.max_new_tokens <= self.context_window

    def fit(self) -> list[dict[str, str]]:
        """Drop the oldest turns until the prompt and the reply fit; return what was dropped now.

        Turns go in user/assistant pairs, so the history still starts with a user message; the latest
        message is never dropped (if it alone does not fit, that is a ValueError).
        """
        dropped: list[dict[str, str]] = []
        while not self.fits():
            if len(self.turns) <= 1:
                raise ValueError(f"content: the last message alone needs {self.n_tokens()} tokens plus "
                                 f"{self.max_new_tokens} for the reply, more than context_window="
                                 f"{self.context_window}")
            n = 2 if len(self.turns) > 2 and self.turns[1]["role"] == "assistant" else 1
            oldest = self.turns[:n]
            del self.turns[:n]
            dropped += oldest
            self.dropped += oldest
            if self.on_overflow == "summarize":  # the previous summary and the oldest turns, in one sentence
                earlier = [message("system", SUMMARY_PREFIX + self.summary)] if self.summary else []
                self.summary = self.summarizer(earlier + oldest)
        return dropped

    def send(self, text: str) -> str:
        """Add the user's message, fit the history into the window, ask the model, remember its reply."""
        self.add("user", text)
        try:
            self.fit()
        except ValueError:
            self.turns.pop()  # a message that cannot fit is not kept either
            raise
        reply = complete(self.model, self.tokenizer, self.messages, self.max_new_tokens, **self.generation)
        self.turns.append({"role": "assistant", "content": reply or "…"})  # an empty reply still takes a turn
        return reply

    def _summarize_with_model(self, messages: list[dict]) -> str:
        request = [message("user", "Summarize this conversation in one short sentence, keeping names and facts:\n\n"
                           + transcript(messages))]
        return complete(self.model, self.tokenizer, request, self.max_new_tokens) or transcript(messages)[:200]


# Prompt engineering: reading an answer out of a reply, and checking a reply asked for as JSON.

def parse_json_object(text: str) -> dict | None:
    """The first JSON object in `text` (models like to add words around it), or None if there is none."""
    check_text("text", text)
    decoder = json.JSONDecoder()
    for start in (i for i, char in enumerate(text) if char == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def extract_answer(reply: str, task: str) -> str | None:
    """The answer a reply gives: for 'sentiment' the first 'positive'/'negative', for 'arithmetic' a number.

    If the reply has an 'Answer:' line (step-by-step prompts ask for one) only the text after the last
    one counts; otherwise an arithmetic reply's last number is taken (its working comes first).
    """
    if task not in ("sentiment", "arithmetic"):
        raise ValueError(f"task: expected 'sentiment' or 'arithmetic', got {task!r}")
    lowered = reply.lower()
    marked = "answer:" in lowered
    text = lowered.rsplit("answer:", 1)[1] if marked else lowered
    if task == "sentiment":
        found = re.findall(r"\b(positive|negative)\b", text)
        return found[0] if found else None
    numbers = re.findall(r"-?\d+(?:,\d{3})*", text)
    if not numbers:
        return None
    return (numbers[0] if marked else numbers[-1]).replace(",", "")
