"""Checkers for notebook 09's exercises: RMSNorm, grouped-query attention's repeat, a few-shot prompt,
and validating a reply asked for as JSON. None of them needs the model loaded.

The learner's function is called through `exercises.call`, so an error it raises becomes a failed
result naming the input and the error; a `None` or a string where a tensor or a list was expected is
named with `exercises.what_it_is`."""

from __future__ import annotations

from typing import Any, Callable

from course_lib.exercises import Mismatch, Result, call, check, expect, expect_close, expect_equal, what_it_is

JSON_CASES = [
    ('{"sentiment": "positive"}', "positive"),
    ('Sure! Here is the JSON: {"sentiment": "negative"} Hope it helps.', "negative"),
    ('{"sentiment": "Positive"}', "positive"),
    ('{"sentiment": "neutral"}', None),
    ('{"mood": "positive"}', None),
    ("{'sentiment': 'positive'}", None),
    ('{"sentiment": "positive"', None),
    ("The review is positive.", None),
    ('["positive"]', None),
    ('{"sentiment": ["positive"]}', None),
]


def _expect_tensor(got: Any, what: str) -> None:
    """A tensor, or a Mismatch naming what came back instead (None: a missing `return`; a str: text)."""
    import torch

    if not isinstance(got, torch.Tensor):
        raise Mismatch(f"{what}: expected a torch.Tensor, got {what_it_is(got)}.")


def exercise_1(rms_norm: Callable) -> Result:
    """rms_norm(x, weight, eps) -> x / sqrt(mean(x², last dim) + eps) * weight, as torch's F.rms_norm."""
    import torch
    import torch.nn.functional as F

    def attempt():
        generator = torch.Generator().manual_seed(9)
        for shape in ((4,), (2, 3, 8)):
            x = torch.randn(*shape, generator=generator) * 3 + 1
            weight = torch.randn(shape[-1], generator=generator)
            what = f"rms_norm(x of shape {tuple(shape)}, weight, 1e-5)"
            got = call(what, rms_norm, x, weight, 1e-5)
            _expect_tensor(got, what)
            expect_equal(tuple(got.shape), tuple(x.shape), f"the shape of {what}")
            expected = F.rms_norm(x, (shape[-1],), weight, eps=1e-5)
            layer_norm = F.layer_norm(x, (shape[-1],), weight, eps=1e-5)
            if torch.allclose(got, layer_norm, atol=1e-4) and not torch.allclose(layer_norm, expected, atol=1e-4):
                raise Mismatch("rms_norm: this is LayerNorm (it subtracts the mean). RMSNorm only divides by "
                               "the root mean square: x / sqrt(mean(x**2) + eps).")
            expect_close(got, expected, what, tol=1e-5)

    return check("1 (RMSNorm)", attempt,
                 "One statistic instead of two and no bias: Llama normalises every block input this way.")


def exercise_2(repeat_kv: Callable) -> Result:
    """repeat_kv(k, n_rep): (batch, kv_heads, length, d) -> (batch, kv_heads * n_rep, length, d), query
    head h using key/value head h // n_rep."""
    import torch

    def attempt():
        k = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
        for n_rep in (1, 3):
            what = f"repeat_kv(k of shape (2, 3, 4, 5), {n_rep})"
            got = call(what, repeat_kv, k, n_rep)
            _expect_tensor(got, what)
            expect_equal(tuple(got.shape), (2, 3 * n_rep, 4, 5), f"the shape of {what}")
            expected = k.repeat_interleave(n_rep, dim=1)
            if n_rep > 1 and torch.equal(got, k.repeat(1, n_rep, 1, 1)):
                raise Mismatch("repeat_kv: the heads come out tiled (0, 1, 2, 0, 1, 2, ...); each key/value head "
                               "serves a group of neighbouring query heads (0, 0, 0, 1, 1, 1, ...): "
                               "query head h reads key/value head h // n_rep.")
            expect_close(got, expected, what, tol=0)

    return check("2 (grouped-query attention)", attempt,
                 "SmolLM2 stores 3 key/value heads for its 9 query heads: its KV cache is 3 times smaller.")


def exercise_3(few_shot_messages: Callable) -> Result:
    """few_shot_messages(examples, question, system) -> chat messages: system, then each example as a
    user question and an assistant answer, then the question."""

    examples = [("2 + 2?", "4"), ("3 + 5?", "8")]

    def attempt():
        what = "few_shot_messages([('2 + 2?', '4'), ('3 + 5?', '8')], '6 + 1?', 'Answer with a number.')"
        got = call(what, few_shot_messages, examples, "6 + 1?", "Answer with a number.")
        expect(isinstance(got, list), f"{what}: expected a list of messages, got {what_it_is(got)}.")
        for i, m in enumerate(got):
            expect(isinstance(m, dict) and set(m) == {"role", "content"},
                   f"message {i}: expected a dict with keys 'role' and 'content', got {m!r}.")
        expected = [{"role": "system", "content": "Answer with a number."},
                    {"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "4"},
                    {"role": "user", "content": "3 + 5?"}, {"role": "assistant", "content": "8"},
                    {"role": "user", "content": "6 + 1?"}]
        roles = [m["role"] for m in got]
        expect_equal(roles, [m["role"] for m in expected], "the roles, in order")
        expect_equal(got, expected, "the messages")
        what = "few_shot_messages([], '6 + 1?', 'Answer with a number.')"
        none = call(what, few_shot_messages, [], "6 + 1?", "Answer with a number.")
        expect(isinstance(none, list), f"{what}: expected a list of messages, got {what_it_is(none)}.")
        expect_equal(none, [expected[0], expected[-1]], "with no examples (zero-shot)")

    return check("3 (a few-shot prompt)", attempt,
                 "Examples as earlier turns of the chat: the model sees a conversation in which it already "
                 "answered in exactly the format you want.")


def _json_hint(error: BaseException) -> str:
    return (" A model's reply can be anything: return None for invalid JSON instead of crashing "
            "(catch the error, or check before you index).")


def exercise_4(sentiment_from_json: Callable) -> Result:
    """sentiment_from_json(reply) -> 'positive' / 'negative' from a reply holding a JSON object
    {"sentiment": ...}, or None when the reply is not valid JSON of that shape."""

    def attempt():
        for reply, expected in JSON_CASES:
            what = f"sentiment_from_json({reply!r})"
            got = call(what, sentiment_from_json, reply, hint=_json_hint)
            if expected is not None and got != expected:
                raise Mismatch(f"{what}: expected {expected!r}, got "
                               f"{what_it_is(got) if got is None or not isinstance(got, str) else repr(got)}.")
            expect_equal(got, expected, what)

    return check("4 (validate a JSON reply)", attempt,
                 "Parse, check the shape, check the values, and have a plan for replies that fail: retry, or "
                 "fall back.")
