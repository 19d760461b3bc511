"""course_lib.constrained: a sampler that can only write valid tool calls, checked against a full mask,
against `json` and `agents.parse_tool_calls`, and against llama.cpp's own grammar engine."""

import json
import string

import pytest
import torch

from course_lib import pretrained
from course_lib.agents import parse_tool_calls
from course_lib.constrained import (COMPLETE, NO, PREFIX, ToolCallFormat, allowed_mask, best_allowed,
                                    constrained_greedy)

FORMAT = ToolCallFormat({"calculator": ["expression"], "glossary": ["term"], "divide": ["a", "b"]})
CALL = '<tool_call>[{"name": "calculator", "arguments": {"expression": "17 * 23"}}]</tool_call>'
# a toy vocabulary: every printable character, a few longer pieces, a special token (None) and end-of-text
TEXTS = list(string.printable) + ["<tool_call>", '[{"name": "', "calc", "ulator", '"}}]', "</tool_call>", "Sure", None]
EOS = len(TEXTS)
TEXTS.append(None)


def test_a_whole_call_is_complete_its_starts_are_prefixes_and_anything_else_is_refused():
    assert FORMAT.state(CALL) == COMPLETE
    assert all(FORMAT.state(CALL[:n]) == PREFIX for n in range(len(CALL)))
    assert FORMAT.state('<tool_call>[{"name": "divide", "arguments": {"a": "1", "b": "2"}}]</tool_call>') == COMPLETE
    for wrong in ["Sure", '<tool_call>[{"name": "weather"', CALL + " ", CALL.replace("17 * 23", ""),
                  CALL.replace("17 * 23", " 17"), CALL.replace("17 * 23", ".17"), CALL.replace("17", 'a"b'), CALL.replace("17 * 23", "x" * 41)]:
        assert FORMAT.state(wrong) == NO, wrong


def test_every_complete_call_is_json_that_parse_tool_calls_reads():
    _, calls, invalid = parse_tool_calls(CALL)
    assert invalid == [] and calls[0]["name"] == "calculator" and calls[0]["args"] == {"expression": "17 * 23"}
    assert json.loads(CALL[len("<tool_call>"):-len("</tool_call>")]) == [{"name": "calculator",
                                                                          "arguments": {"expression": "17 * 23"}}]


@pytest.mark.parametrize("text", ["", "<tool_call>", '<tool_call>[{"name": "calc', CALL[:-5], CALL,
                                  '<tool_call>[{"name": "divide", "arguments": {"a": "12'])
def test_the_best_allowed_token_is_the_argmax_of_the_masked_logits(text):
    generator = torch.Generator().manual_seed(len(text))
    for _ in range(5):
        logits = torch.randn(len(TEXTS), generator=generator)
        mask = allowed_mask(text, FORMAT, TEXTS, EOS)
        expected = int(logits.masked_fill(~mask, float("-inf")).argmax())
        assert best_allowed(logits, text, FORMAT, TEXTS, EOS) == expected
    assert bool(allowed_mask(text, FORMAT, TEXTS, EOS)[EOS]) == (text == CALL)  # end-of-text only when complete


class RandomModel:
    """Logits from a seeded generator: a model with no idea of the format."""

    def __init__(self, seed):
        self.generator = torch.Generator().manual_seed(seed)

    def new_cache(self):
        return []

    def __call__(self, ids, cache, last_only):
        return torch.randn(1, 1, len(TEXTS), generator=self.generator) * 5


@pytest.mark.parametrize("seed", range(5))
def test_a_model_that_knows_nothing_still_writes_a_call_that_parses(seed):
    text = constrained_greedy(RandomModel(seed), [0, 1, 2], FORMAT, TEXTS, EOS, max_new_tokens=200)
    assert FORMAT.state(text) == COMPLETE
    _, calls, invalid = parse_tool_calls(text)
    assert invalid == [] and len(calls) == 1 and calls[0]["name"] in FORMAT.tools


def test_bad_formats_are_refused_with_a_message():
    with pytest.raises(ValueError, match="tools: expected at least one tool"):
        ToolCallFormat({})
    with pytest.raises(ValueError, match=r"tools\['calculator'\]: expected a list of argument names"):
        ToolCallFormat({"calculator": "expression"})


def test_llama_cpp_with_the_gbnf_grammar_writes_a_call_our_format_accepts():
    from course_lib.llamacpp import LlamaCpp

    with LlamaCpp(pretrained.smollm2_gguf_path(), n_ctx=256, n_threads=1) as llm:
        text = llm.complete("The weather in Paris is", max_tokens=64, grammar=FORMAT.gbnf())
    assert FORMAT.state(text) == COMPLETE, text


class RandomLlama:
    """Random logits over SmolLM2's whole vocabulary, with the interface of `llama.Llama`."""

    def __init__(self, vocab_size):
        self.vocab_size, self.generator = vocab_size, torch.Generator().manual_seed(0)

    def new_cache(self):
        return []

    def __call__(self, ids, cache=None, last_only=True):
        return torch.randn(1, 1, self.vocab_size, generator=self.generator)


def test_the_constrained_chat_model_answers_a_question_with_a_tool_call_that_parses():
    from course_lib.agents import LlamaToolChat, calculator, glossary, run_agent

    tokenizer = pretrained.load_smollm2_tokenizer()
    chat = LlamaToolChat(llama=RandomLlama(len(tokenizer)), tokenizer=tokenizer)
    history = run_agent(chat, [calculator, glossary], "What is 17 * 23?", max_steps=1)
    reply = history[1]
    assert reply.invalid_tool_calls == [] and len(reply.tool_calls) == 1
    assert reply.tool_calls[0]["name"] in ("calculator", "glossary")
    assert reply.response_metadata["constrained"] is True
    assert history[2].type == "tool"  # the loop ran the tool the call named
