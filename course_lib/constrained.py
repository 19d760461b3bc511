"""Constrained decoding: a model that can only write valid tool calls (notebook 10).

At each step the sampler keeps only the tokens after which the text is still the start of a valid
tool call, masks the others' logits to -inf, and takes the likeliest of the rest (greedy). The
format is SmolLM2's: `<tool_call>[{"name": "calculator", "arguments": {"expression": "17 * 23"}}]</tool_call>`.

- `ToolCallFormat`: which texts are valid tool calls, which are valid starts of one (`state`), and the
  same format as a GBNF grammar for llama.cpp (`gbnf`).
- `token_texts`: the text of every token id (None for special tokens and partial UTF-8 bytes).
- `allowed_mask`, `constrained_greedy`: one masked step, and the whole loop over our `llama.Llama`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from course_lib.validation import check_positive_int, check_text, check_type

NO, PREFIX, COMPLETE = "no", "prefix", "complete"
# a value is a short JSON string of these characters (enough for arithmetic and glossary terms), so it
# needs no escapes and ends at the first quote
VALUE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-*/()._")
FIRST_VALUE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789(")


class ToolCallFormat:
    """The tool calls `<tool_call>[{"name": T, "arguments": {A: "text", ...}}]</tool_call>` for the given tools.

    `tools` maps each tool name to its argument names; every value is a string of 1 to `max_value_chars`
    characters from `VALUE_CHARS` (letters, digits, spaces, `+-*/()._`) that starts with a letter, a digit or `(`.
    """

    def __init__(self, tools: Mapping[str, Sequence[str]], max_value_chars: int = 40) -> None:
        check_type("tools", tools, Mapping)
        if not tools:
            raise ValueError("tools: expected at least one tool name -> argument names, got an empty mapping")
        for name, arguments in tools.items():
            check_text("tool name", name)
            if isinstance(arguments, str) or not arguments or not all(isinstance(a, str) and a for a in arguments):
                raise ValueError(f"tools[{name!r}]: expected a list of argument names, got {arguments!r}")
        self.tools = {name: list(arguments) for name, arguments in tools.items()}
        self.max_value_chars = check_positive_int("max_value_chars", max_value_chars)

    def pieces(self, name: str) -> list[str]:
        """The fixed texts of one tool's call; a value goes between each two of them."""
        arguments = self.tools[name]
        pieces = [f'<tool_call>[{{"name": "{name}", "arguments": {{"{arguments[0]}": "']
        pieces += [f'", "{argument}": "' for argument in arguments[1:]]
        return pieces + ['"}}]</tool_call>']

    def _state_for(self, text: str, pieces: list[str]) -> str:
        position = 0
        for number, piece in enumerate(pieces):
            if number > 0:  # a value comes first: characters up to the closing quote
                end = position
                while end < len(text) and text[end] in VALUE_CHARS:
                    end += 1
                if end - position > self.max_value_chars or (end > position and text[position] not in FIRST_VALUE_CHARS):
                    return NO
                if end == len(text):
                    return PREFIX
                if end == position or text[end] != '"':  # an empty value, or a character not allowed
                    return NO
                position = end
            written = text[position:position + len(piece)]
            if not piece.startswith(written):
                return NO
            if len(written) < len(piece):
                return PREFIX
            position += len(piece)
        return COMPLETE if position == len(text) else NO

    def state(self, text: str) -> str:
        """"complete" for a whole valid call, "prefix" for the start of one, "no" otherwise."""
        states = {self._state_for(text, self.pieces(name)) for name in self.tools}
        return COMPLETE if COMPLETE in states else PREFIX if PREFIX in states else NO

    def gbnf(self) -> str:
        """The same format as a GBNF grammar, the grammar language of llama.cpp."""
        quote = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
        calls = []
        for name in self.tools:
            pieces = self.pieces(name)
            calls.append(" value ".join(quote(p) for p in pieces))
        value = f"value ::= [A-Za-z0-9(] [A-Za-z0-9 +*/()._-]{{0,{self.max_value_chars - 1}}}"
        return "root ::= " + " | ".join(f"( {c} )" for c in calls) + "\n" + value + "\n"


def token_texts(tokenizer) -> list[str | None]:
    """The text each token id stands for; None for special tokens and for pieces of a UTF-8 character."""
    special = set(tokenizer.all_special_ids) | set(tokenizer.get_added_vocab().values())
    texts = []
    for token_id in range(len(tokenizer)):
        text = None if token_id in special else tokenizer.decode([token_id])
        texts.append(None if text is None or "\ufffd" in text or text == "" else text)
    return texts


def allowed_mask(text: str, fmt: ToolCallFormat, texts: Sequence[str | None], eos_id: int) -> Tensor:
    """True for each token id after which `text` is still a valid start of a call (end-of-text: only when complete)."""
    mask = torch.tensor([t is not None and fmt.state(text + t) != NO for t in texts])
    mask[eos_id] = fmt.state(text) == COMPLETE
    return mask


def _best_first(logits: Tensor, first: int = 64):
    yield from logits.topk(first).indices.tolist()  # usually enough; sorting all 49,152 is slow
    yield from logits.argsort(descending=True).tolist()[first:]


def best_allowed(logits: Tensor, text: str, fmt: ToolCallFormat, texts: Sequence[str | None], eos_id: int) -> int:
    """The likeliest allowed token: argmax of the logits with `allowed_mask` applied, found by trying the
    tokens best first and stopping at the first allowed one (instead of checking all of them)."""
    for token_id in _best_first(logits):
        if token_id == eos_id:
            if fmt.state(text) == COMPLETE:
                return token_id
        elif texts[token_id] is not None and fmt.state(text + texts[token_id]) != NO:
            return token_id
    raise ValueError(f"no token continues {text!r} validly")


@torch.no_grad()
def constrained_greedy(model, prompt_ids: Sequence[int], fmt: ToolCallFormat, texts: Sequence[str | None],
                       eos_id: int, max_new_tokens: int = 64) -> str:
    """Greedy decoding from `model` (our `llama.Llama`) where every step keeps the text a valid start
    of a tool call; returns the call's text (complete unless `max_new_tokens` ran out)."""
    check_positive_int("max_new_tokens", max_new_tokens)
    cache = model.new_cache()
    logits = model(torch.tensor([list(prompt_ids)]), cache=cache, last_only=True)[0, -1]
    text = ""
    for _ in range(max_new_tokens):
        token_id = best_allowed(logits, text, fmt, texts, eos_id)
        if token_id == eos_id:
            break
        text += texts[token_id]
        logits = model(torch.tensor([[token_id]]), cache=cache, last_only=True)[0, -1]
    return text


__all__ = ["COMPLETE", "NO", "PREFIX", "FIRST_VALUE_CHARS", "VALUE_CHARS", "ToolCallFormat", "allowed_mask", "best_allowed", "constrained_greedy",
           "token_texts"]
