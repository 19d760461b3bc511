"""Checkers for notebook 09's exercises: RMSNorm, grouped-query attention's repeat, a few-shot prompt,
and validating a reply asked for as JSON. None of them needs the model loaded."""

from __future__ import annotations

from typing import Callable

from course_lib.exercises import Mismatch, Result, check, expect, expect_close, expect_equal

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


def exercise_1(rms_norm: Callable) -> Result:
    """rms_norm(x, weight, eps) -> x / sqrt(mean(x², last dim) + eps) * weight, as torch's F.rms_norm."""
    import torch
    import torch.nn.functional as F

    def attempt():
        generator = torch.Generator().manual_seed(9)
        for shape in ((4,), (2, 3, 8)):
            x = torch.randn(*shape, generator=generator) * 3 + 1
            weight = torch.randn(shape[-1], generator=generator)
            got = rms_norm(x, weight, 1e-5)
            expect(isinstance(got, torch.Tensor), f"rms_norm: expected a torch.Tensor, got {type(got).__name__}.")
            expect_equal(tuple(got.shape), tuple(x.shape), f"rms_norm(x of shape {tuple(shape)}) shape")
            expected = F.rms_norm(x, (shape[-1],), weight, eps=1e-5)
            layer_norm = F.layer_norm(x, (shape[-1],), weight, eps=1e-5)
            if torch.allclose(got, layer_norm, atol=1e-4) and not torch.allclose(layer_norm, expected, atol=1e-4):
                raise Mismatch("rms_norm: this is LayerNorm (it subtracts the mean). RMSNorm only divides by "
                               "the root mean square: x / sqrt(mean(x**2) + eps).")
            expect_close(got, expected, f"rms_norm(x of shape {tuple(shape)})", tol=1e-5)

    return check("1 (RMSNorm)", attempt,
                 "One statistic instead of two and no bias: Llama normalises every block input this way.")


def exercise_2(repeat_kv: Callable) -> Result:
    """repeat_kv(k, n_rep): (batch, kv_heads, length, d) -> (batch, kv_heads * n_rep, length, d), query
    head h using key/value head h // n_rep."""
    import torch

    def attempt():
        k = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
        for n_rep in (1, 3):
            got = repeat_kv(k, n_rep)
            expect(isinstance(got, torch.Tensor), f"repeat_kv: expected a torch.Tensor, got {type(got).__name__}.")
            expect_equal(tuple(got.shape), (2, 3 * n_rep, 4, 5), f"repeat_kv(k of shape (2, 3, 4, 5), {n_rep}) shape")
            expected = k.repeat_interleave(n_rep, dim=1)
            if n_rep > 1 and torch.equal(got, k.repeat(1, n_rep, 1, 1)):
                raise Mismatch("repeat_kv: the heads come out tiled (0, 1, 2, 0, 1, 2, ...); each key/value head "
                               "serves a group of neighbouring query heads (0, 0, 0, 1, 1, 1, ...): "
                               "query head h reads key/value head h // n_rep.")
            expect_close(got, expected, f"repeat_kv(k, {n_rep})", tol=0)

    return check("2 (grouped-query attention)", attempt,
                 "SmolLM2 stores 3 key/value heads for its 9 query heads: its KV cache is 3 times smaller.")


def exercise_3(few_shot_messages: Callable) -> Result:
    """few_shot_messages(examples, question, system) -> chat messages: system, then each example as a
    user question and an assistant answer, then the question."""

    examples = [("2 + 2?", "4"), ("3 + 5?", "8")]

    def attempt():
        got = few_shot_messages(examples, "6 + 1?", "Answer with a number.")
        expect(isinstance(got, list), f"few_shot_messages: expected a list of messages, got {type(got).__name__}.")
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
        none = few_shot_messages([], "6 + 1?", "Answer with a number.")
        expect_equal(none, [expected[0], expected[-1]], "with no examples (zero-shot)")

    return check("3 (a few-shot prompt)", attempt,
                 "Examples as earlier turns of the chat: the model sees a conversation in which it already "
                 "answered in exactly the format you want.")


def exercise_4(sentiment_from_json: Callable) -> Result:
    """sentiment_from_json(reply) -> 'positive' / 'negative' from a reply holding a JSON object
    {"sentiment": ...}, or None when the reply is not valid JSON of that shape."""

    def attempt():
        for reply, expected in JSON_CASES:
            try:
                got = sentiment_from_json(reply)
            except NotImplementedError:
                raise
            except Exception as error:  # noqa: BLE001 - a crash on bad input is the lesson here
                raise Mismatch(f"sentiment_from_json({reply!r}) raised {type(error).__name__}: {error}. A model's "
                               "reply can be anything: return None for invalid JSON instead of crashing.") from None
            expect_equal(got, expected, f"sentiment_from_json({reply!r})")

    return check("4 (validate a JSON reply)", attempt,
                 "Parse, check the shape, check the values, and have a plan for replies that fail: retry, or "
                 "fall back.")
