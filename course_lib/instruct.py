"""Instruction tuning (SFT): a prompt template, loss masked on the prompt, and tasks we can check.

Notebook 08 turns the pre-trained tiny GPT, which continues text, into one that answers. The data
are `data/instructions.jsonl` (hand-written pairs plus generated small Python-function requests) and
`data/preferences.jsonl` (chosen/rejected answers for the reward model), both written by
`scripts/build_instruct_data.py` from the task kinds in `OPS`. Generated tasks are *checkable*:
`check_answer` runs the model's function on test inputs, in a whitelist-only evaluator (no imports,
loops, attributes beyond a few string methods, or big numbers), so "the tuned model answers better" becomes a measured score.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from course_lib.runtime import device_of

# --- the prompt template -------------------------------------------------------------------------

END = "<|endoftext|>"  # the tokenizer's special token: one id, so generation can stop on it
TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"
IGNORE_INDEX = -100  # cross_entropy's ignore_index: positions that do not count in the loss


def format_prompt(instruction: str) -> str:
    """The text the model sees before its answer (Alpaca-style headings the model learns to follow)."""
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError(f"instruction: expected a non-empty string, got {instruction!r}")
    return TEMPLATE.format(instruction=instruction.strip())


def format_example(instruction: str, response: str) -> str:
    """Prompt + answer + the end-of-text token that teaches the model when to stop."""
    return format_prompt(instruction) + response.strip() + END


def sft_example(tokenizer, instruction: str, response: str, context_length: int,
                mask_prompt: bool = True) -> tuple[list[int], list[int]]:
    """(input ids, target ids) for one pair; targets are the inputs shifted left, IGNORE_INDEX on the prompt.

    Masking the prompt means the model is graded only on the answer: it learns to respond, not to
    write instructions (which is what pre-training taught it). `mask_prompt=False` grades every token,
    the other common choice (notebook 08 compares the two).
    """
    if not isinstance(mask_prompt, bool):
        raise TypeError(f"mask_prompt: expected True or False, got {mask_prompt!r}")
    prompt = tokenizer.encode(format_prompt(instruction))
    full = tokenizer.encode(format_example(instruction, response))
    if full[:len(prompt)] != prompt:  # BPE may merge across the boundary; fall back to separate encoding
        full = prompt + tokenizer.encode(response.strip() + END)
    full = full[:context_length + 1]
    inputs, targets = full[:-1], full[1:]
    if mask_prompt:
        targets = [IGNORE_INDEX if i < len(prompt) - 1 else t for i, t in enumerate(targets)]
    return inputs, targets


def sft_batch(tokenizer, pairs: Sequence[tuple[str, str]], context_length: int,
              pad_id: int = 0, mask_prompt: bool = True) -> tuple[Tensor, Tensor]:
    """A padded batch (inputs, targets) of (instruction, response) pairs; padding is IGNORE_INDEX too."""
    if not pairs:
        raise ValueError("pairs: expected at least one (instruction, response) pair, got none")
    rows = [sft_example(tokenizer, i, r, context_length, mask_prompt) for i, r in pairs]
    longest = max(len(x) for x, _ in rows)
    inputs = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    targets = torch.full((len(rows), longest), IGNORE_INDEX, dtype=torch.long)
    for row, (x, y) in enumerate(rows):
        inputs[row, :len(x)] = torch.tensor(x)
        targets[row, :len(y)] = torch.tensor(y)
    return inputs, targets


def encode_answers(tokenizer, pairs: Sequence[tuple[str, str]], context_length: int,
                   pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """(ids, lengths) of whole templated (instruction, answer) texts, padded on the right: what a reward
    model scores (its score is read at the last real token, the end-of-text token)."""
    if not pairs:
        raise ValueError("pairs: expected at least one (instruction, answer) pair, got none")
    seqs = [tokenizer.encode(format_example(i, a))[-context_length:] for i, a in pairs]
    ids = torch.full((len(seqs), max(map(len, seqs))), pad_id, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, :len(seq)] = torch.tensor(seq)
    return ids, torch.tensor([len(s) for s in seqs])


def cut_answer(text: str) -> str:
    """The answer part of generated text: up to the end marker (or the next '### ' heading)."""
    for stop in (END, "\n### "):
        if stop in text:
            text = text[:text.index(stop)]
    return text.strip()


def end_id(tokenizer) -> int | None:
    """The id of the end-of-text token, if `END` is one token for this tokenizer."""
    ids = tokenizer.encode(END)
    return ids[0] if len(ids) == 1 else None


def generate(model, tokenizer, prompt: str, max_new_tokens: int = 64, temperature: float = 0.0,
             generator: torch.Generator | None = None, stop_at_end: bool = True) -> str:
    """The text `model` writes after `prompt` (greedy by default), without the prompt."""
    ids = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=device_of(model))
    room = model.config.context_length - ids.shape[1]
    out = model.generate(ids, min(max_new_tokens, max(room, 0)), temperature=temperature, generator=generator,
                         eos_id=end_id(tokenizer) if stop_at_end else None)
    return tokenizer.decode(out[0, ids.shape[1]:].tolist())


def answer(model, tokenizer, instruction: str, max_new_tokens: int = 64, temperature: float = 0.0,
           generator: torch.Generator | None = None) -> str:
    """The model's answer to `instruction` asked through the template, cut at the end marker."""
    return cut_answer(generate(model, tokenizer, format_prompt(instruction), max_new_tokens, temperature, generator))


def score(model, tokenizer, rows: Sequence[dict], max_new_tokens: int = 48) -> tuple[float, list[dict]]:
    """Fraction of checkable rows (with a `task`) the model answers correctly, greedy, and the details."""
    checked = [r for r in rows if "task" in r]
    if not checked:
        raise ValueError("rows: expected generated rows with a 'task' field (checkable tasks), got none")
    details = []
    for row in checked:
        text = answer(model, tokenizer, row["instruction"], max_new_tokens)
        details.append({"instruction": row["instruction"], "answer": text, "passed": check_answer(row, text)})
    return sum(d["passed"] for d in details) / len(details), details


# --- checkable tasks -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    """One kind of task: what to ask, the one-line answer, and the reference it must agree with."""

    key: str
    args: tuple[str, ...]
    phrases: tuple[str, ...]
    body: str
    reference: Callable
    names: tuple[str, ...]


def _op(key, args, phrases, body, reference, names):
    return Op(key, tuple(args.split(", ")), tuple(phrases), body, reference, tuple(names))


OPS: tuple[Op, ...] = (
    _op("add", "a, b", ["the sum of a and b", "a plus b", "a and b added together"], "a + b",
        lambda a, b: a + b, ["add", "add_numbers", "total"]),
    _op("sub", "a, b", ["a minus b", "b subtracted from a", "the difference between a and b"], "a - b",
        lambda a, b: a - b, ["subtract", "minus", "difference"]),
    _op("mul", "a, b", ["the product of a and b", "a times b", "a multiplied by b"], "a * b",
        lambda a, b: a * b, ["multiply", "product", "times"]),
    _op("max2", "a, b", ["the larger of a and b", "the maximum of a and b"], "max(a, b)",
        lambda a, b: max(a, b), ["larger", "maximum", "bigger"]),
    _op("min2", "a, b", ["the smaller of a and b", "the minimum of a and b"], "min(a, b)",
        lambda a, b: min(a, b), ["smaller", "minimum", "lesser"]),
    _op("mod", "a, b", ["the remainder of a divided by b", "a modulo b"], "a % b",
        lambda a, b: a % b, ["remainder", "modulo"]),
    _op("square", "x", ["the square of x", "x squared", "x multiplied by itself"], "x * x",
        lambda x: x * x, ["square", "squared"]),
    _op("double", "x", ["twice x", "x doubled", "two times x"], "2 * x",
        lambda x: 2 * x, ["double", "twice"]),
    _op("inc", "x", ["x plus one", "the number after x", "x increased by one"], "x + 1",
        lambda x: x + 1, ["increment", "next_number", "plus_one"]),
    _op("dec", "x", ["x minus one", "the number before x", "x decreased by one"], "x - 1",
        lambda x: x - 1, ["decrement", "previous_number", "minus_one"]),
    _op("neg", "x", ["the negative of x", "minus x", "x with its sign flipped"], "-x",
        lambda x: -x, ["negate", "negative", "flip_sign"]),
    _op("abs", "x", ["the absolute value of x", "the distance of x from zero"], "abs(x)",
        lambda x: abs(x), ["absolute", "magnitude"]),
    _op("cube", "x", ["the cube of x", "x to the power of three"], "x * x * x",
        lambda x: x * x * x, ["cube", "cubed"]),
    _op("even", "n", ["True if n is even and False otherwise", "whether n is even"], "n % 2 == 0",
        lambda n: n % 2 == 0, ["is_even", "even"]),
    _op("odd", "n", ["True if n is odd and False otherwise", "whether n is odd"], "n % 2 == 1",
        lambda n: n % 2 == 1, ["is_odd", "odd"]),
    _op("positive", "n", ["True if n is greater than zero", "whether n is positive"], "n > 0",
        lambda n: n > 0, ["is_positive", "positive"]),
    _op("negative", "n", ["True if n is less than zero", "whether n is negative"], "n < 0",
        lambda n: n < 0, ["is_negative", "below_zero"]),
    _op("zero", "n", ["True if n is zero", "whether n equals zero"], "n == 0",
        lambda n: n == 0, ["is_zero", "zero"]),
    _op("div3", "n", ["True if n is divisible by 3", "whether n is a multiple of three"], "n % 3 == 0",
        lambda n: n % 3 == 0, ["divisible_by_three", "multiple_of_three"]),
    _op("upper", "s", ["s in upper case", "the string s in capital letters"], "s.upper()",
        lambda s: s.upper(), ["to_upper", "shout", "upper"]),
    _op("lower", "s", ["s in lower case", "the string s in small letters"], "s.lower()",
        lambda s: s.lower(), ["to_lower", "whisper", "lower"]),
    _op("reverse", "s", ["s reversed", "the string s backwards"], "s[::-1]",
        lambda s: s[::-1], ["reverse", "backwards", "reverse_string"]),
    _op("length", "s", ["the length of s", "the number of characters in s"], "len(s)",
        lambda s: len(s), ["length", "count_chars", "size"]),
    _op("first_char", "s", ["the first character of s", "the first letter of s"], "s[0]",
        lambda s: s[0], ["first_char", "first_letter", "initial"]),
    _op("last_char", "s", ["the last character of s", "the last letter of s"], "s[-1]",
        lambda s: s[-1], ["last_char", "last_letter", "final_char"]),
    _op("strip", "s", ["s without spaces at both ends", "s with leading and trailing spaces removed"],
        "s.strip()", lambda s: s.strip(), ["strip_spaces", "trim", "clean"]),
    _op("repeat", "s", ["s repeated twice", "two copies of s joined together"], "s + s",
        lambda s: s + s, ["repeat", "echo", "twice_string"]),
    _op("sum", "xs", ["the sum of the numbers in xs", "the total of the list xs"], "sum(xs)",
        lambda xs: sum(xs), ["sum_list", "total_of", "add_all"]),
    _op("max", "xs", ["the largest number in xs", "the maximum of the list xs"], "max(xs)",
        lambda xs: max(xs), ["largest", "max_of", "biggest"]),
    _op("min", "xs", ["the smallest number in xs", "the minimum of the list xs"], "min(xs)",
        lambda xs: min(xs), ["smallest", "min_of", "tiniest"]),
    _op("count", "xs", ["the number of items in xs", "how many items the list xs has"], "len(xs)",
        lambda xs: len(xs), ["count", "count_items", "how_many"]),
    _op("first", "xs", ["the first item of xs", "the first element of the list xs"], "xs[0]",
        lambda xs: xs[0], ["first", "head", "first_item"]),
    _op("last", "xs", ["the last item of xs", "the last element of the list xs"], "xs[-1]",
        lambda xs: xs[-1], ["last", "tail_item", "last_item"]),
    _op("sorted", "xs", ["xs sorted from smallest to largest", "the list xs in increasing order"], "sorted(xs)",
        lambda xs: sorted(xs), ["sort_list", "in_order", "ascending"]),
    _op("reversed", "xs", ["the list xs in reverse order", "xs backwards"], "xs[::-1]",
        lambda xs: xs[::-1], ["reverse_list", "flip", "backwards_list"]),
)
OPS_BY_KEY = {op.key: op for op in OPS}
TEST_INPUTS = {
    ("a", "b"): [(3, 4), (10, 3), (-2, 5), (7, 7), (0, 9)],
    ("x",): [(3,), (-4,), (0,), (11,)],
    ("n",): [(4,), (7,), (0,), (-3,), (9,)],
    ("s",): [("hello",), ("  Py thon ",), ("ab",), ("Data",)],
    ("xs",): [([3, 1, 2],), ([5],), ([-1, 8, 0, 4],)],
}


@dataclass(frozen=True)
class Task:
    """A generated instruction with its correct answer and what `check_answer` needs to grade one."""

    instruction: str
    response: str
    op: str
    name: str

    def to_dict(self) -> dict:
        return {"instruction": self.instruction, "response": self.response,
                "task": {"op": self.op, "name": self.name}}


# --- grading an answer ---------------------------------------------------------------------------

_ALLOWED_NODES = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Expr, ast.Name, ast.Load,
    ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.Subscript,
    ast.Slice, ast.Attribute, ast.List, ast.Tuple,
    ast.Add, ast.Sub, ast.Mult, ast.Mod, ast.FloorDiv, ast.Div, ast.USub, ast.UAdd, ast.Not,
    ast.And, ast.Or, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
)
_SAFE_BUILTINS = {"len": len, "max": max, "min": min, "sum": sum, "sorted": sorted, "abs": abs,
                  "str": str, "int": int, "list": list, "bool": bool, "True": True, "False": False}
_SAFE_METHODS = {"upper", "lower", "strip", "title", "capitalize"}


def safe_function(code: str, name: str) -> Callable | None:
    """The function `name` defined by `code`, or None if the code fails to parse, defines no such
    function, or uses anything outside a small whitelist (so a model's answer can be run safely)."""
    try:
        with warnings.catch_warnings():  # e.g. "SyntaxWarning: 'int' object is not subscriptable"
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    known = set(_SAFE_BUILTINS) | {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)} \
        | {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            return None
        if isinstance(node, ast.Name) and node.id not in known:  # no open, eval, globals, ...
            return None
        if isinstance(node, ast.Attribute) and node.attr not in _SAFE_METHODS:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and abs(node.value) > 1000:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 100:
            return None
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            return None
    namespace: dict = {"__builtins__": dict(_SAFE_BUILTINS)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code_object = compile(tree, "<answer>", "exec")
        exec(code_object, namespace)  # noqa: S102 - whitelisted AST only
    except Exception:  # noqa: BLE001 - any failure means "wrong answer"
        return None
    fn = namespace.get(name)
    return fn if callable(fn) else None


def check_answer(task: Task | dict, answer: str) -> bool:
    """True if `answer` defines the requested function and it agrees with the reference on every test."""
    if isinstance(task, dict):
        spec = task.get("task", task)
        op, name = OPS_BY_KEY[spec["op"]], spec["name"]
    else:
        op, name = OPS_BY_KEY[task.op], task.name
    fn = safe_function(cut_answer(answer), name)
    if fn is None:
        return False
    for args in TEST_INPUTS[op.args]:
        try:
            if fn(*args) != op.reference(*args):
                return False
        except Exception:  # noqa: BLE001
            return False
    return True
