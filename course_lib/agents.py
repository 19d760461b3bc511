"""Agents over the local SmolLM2 with LangChain: a chat model, two tools and the agent loop (notebook 10).

`SmolLM2Chat` is a small `BaseChatModel`: LangChain messages in, the model's chat template, greedy
`generate`, an `AIMessage` out, with tool calls parsed from `<tool_call>...</tool_call>` when tools
are bound. `LlamaToolChat` (our `llama.Llama`, constrained decoding from `constrained`) and
`LlamaCppToolChat` (llama.cpp with a grammar) answer a question with a tool call that always parses. `calculator` and `glossary` are tools that answer bad arguments with a message the model
can read instead of raising; `run_agent` is the loop that calls the model, runs the tools it asks
for and feeds the results back.
"""

from __future__ import annotations

import ast
import difflib
import json
import operator
import re
import uuid
from typing import Any, Sequence

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import (AIMessage, BaseMessage, HumanMessage, SystemMessage,
                                     ToolMessage)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, ToolException, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from course_lib import data
from course_lib.constrained import ToolCallFormat, constrained_greedy, token_texts
from course_lib.runtime import device_of
from course_lib.validation import check_positive_int, check_text

# The tool-calling format SmolLM2-Instruct was fine-tuned on (its function-calling data, as in the
# chat templates published for the larger SmolLM2 models): tools as JSON inside <tools>, calls as a
# JSON list inside <tool_call>, results sent back in a user turn inside <tool_response>.
TOOL_INSTRUCTION = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. "
    "Based on the question, make one or more function calls to achieve the purpose. "
    "If none of the functions can be used, answer the question in plain text.\n"
    "You have access to the following tools:\n<tools>{tools}</tools>\n"
    "To call functions, answer only with this format, with no other text:\n"
    '<tool_call>[{{"name": "func_name1", "arguments": {{"argument1": "value1"}}}}]</tool_call>'
)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)


# --- messages <-> the chat template -------------------------------------------------------------

def _content(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(part if isinstance(part, str) else part.get("text", "") for part in message.content)


def _render_tool_calls(calls: Sequence[dict]) -> str:
    return f"<tool_call>{json.dumps([{'name': c['name'], 'arguments': c['args']} for c in calls])}</tool_call>"


def to_chat_dicts(messages: Sequence[BaseMessage], tools: Sequence[dict] | None = None) -> list[dict]:
    """LangChain messages as the `{"role", "content"}` dicts a chat template reads.

    With tools, their JSON schemas and the calling convention are added to the system message;
    a tool result becomes a user turn inside `<tool_response>`, an earlier tool call is written back
    as `<tool_call>`.
    """
    roles = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant", ToolMessage: "user"}
    chat = []
    for number, message in enumerate(messages):
        role = next((r for kind, r in roles.items() if isinstance(message, kind)), None)
        if role is None:
            raise TypeError(f"messages[{number}]: expected a System, Human, AI or Tool message, "
                            f"got {type(message).__name__}")
        text = _content(message)
        if isinstance(message, AIMessage) and message.tool_calls:
            text = (text + _render_tool_calls(message.tool_calls)).strip()
        if isinstance(message, ToolMessage):
            text = f"<tool_response>\n{text}\n</tool_response>"
        chat.append({"role": role, "content": text})
    if tools:
        listing = json.dumps([t["function"] if "function" in t else t for t in tools])
        instruction = TOOL_INSTRUCTION.format(tools=listing)
        if chat and chat[0]["role"] == "system":
            chat[0] = {"role": "system", "content": chat[0]["content"] + "\n\n" + instruction}
        else:
            chat.insert(0, {"role": "system", "content": instruction})
    return chat


def parse_tool_calls(text: str) -> tuple[str, list[dict], list[dict]]:
    """Split a reply into (plain text, tool calls, invalid tool calls) in LangChain's dict formats.

    A call is JSON `{"name": ..., "arguments": {...}}` (or a list of them) inside `<tool_call>` tags;
    anything that does not parse becomes an invalid tool call carrying the error, not an exception.
    """
    calls, invalid = [], []
    for raw in _TOOL_CALL.findall(text):
        call_id = f"call_{uuid.uuid5(uuid.NAMESPACE_OID, raw).hex[:8]}"  # stable: same text, same id
        try:
            parsed = json.loads(raw.strip())
            for item in parsed if isinstance(parsed, list) else [parsed]:
                if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                    raise ValueError('expected {"name": ..., "arguments": {...}}')
                args = item.get("arguments", item.get("args", {}))
                if not isinstance(args, dict):
                    raise ValueError(f"arguments must be a JSON object, got {type(args).__name__}")
                calls.append({"name": item["name"], "args": args, "id": call_id, "type": "tool_call"})
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            invalid.append({"name": None, "args": raw.strip(), "id": call_id, "error": str(error),
                            "type": "invalid_tool_call"})
    return _TOOL_CALL.sub("", text).strip(), calls, invalid


# --- the chat model -------------------------------------------------------------------------------

class SmolLM2Chat(BaseChatModel):
    """A LangChain chat model over a local Hugging Face causal LM and its tokenizer (greedy decoding).

    `SmolLM2Chat(model=model, tokenizer=tokenizer)` with the pair from `pretrained.load_smollm2()`.
    """

    model: Any = Field(exclude=True)
    tokenizer: Any = Field(exclude=True)
    max_new_tokens: int = Field(default=48, ge=1)
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return "course-smollm2"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager=None,
                  tools: Sequence[dict] | None = None, **kwargs: Any) -> ChatResult:
        import torch

        chat = to_chat_dicts(messages, tools)
        inputs = self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt",
                                                    return_dict=True).to(device_of(self.model))
        max_new = kwargs.get("max_new_tokens", self.max_new_tokens)
        with torch.no_grad():
            output = self.model.generate(**inputs, max_new_tokens=max_new, do_sample=False,
                                         pad_token_id=self.tokenizer.eos_token_id)
        new_ids = output[0, inputs["input_ids"].shape[1]:]
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True).strip()
        for marker in stop or []:
            text = text.split(marker)[0]
        finished = len(new_ids) < max_new or int(new_ids[-1]) == self.tokenizer.eos_token_id
        calls, invalid = [], []
        if tools:
            text, calls, invalid = parse_tool_calls(text)
        n_in, n_out = int(inputs["input_ids"].shape[1]), int(len(new_ids))
        message = AIMessage(content=text, tool_calls=calls, invalid_tool_calls=invalid,
                            usage_metadata={"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out},
                            response_metadata={"finish_reason": "stop" if finished else "length"})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Sequence, *, tool_choice: str | None = None, **kwargs: Any):
        """This model, with the tools' JSON schemas passed to every call (described in the system prompt)."""
        if tool_choice is not None:
            raise ValueError(f"tool_choice: a local model cannot be forced to call a tool; got {tool_choice!r}, "
                             "expected None")
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


class ScriptedChatModel(FakeMessagesListChatModel):
    """A fake chat model that replays scripted messages in order, ignoring its input.

    It shows an agent loop's mechanics deterministically; it is a stand-in, not a model.
    """

    def bind_tools(self, tools: Sequence, **kwargs: Any):
        return self


def tool_call_format(tools: Sequence[dict], max_value_chars: int = 40) -> ToolCallFormat:
    """The `ToolCallFormat` of bound tools (OpenAI-style dicts, as `bind_tools` passes them): names and arguments."""
    schemas = [t["function"] if "function" in t else t for t in tools]
    return ToolCallFormat({s["name"]: list(s["parameters"]["properties"]) for s in schemas}, max_value_chars)


class _ForcedToolCallChat(BaseChatModel):
    """A chat model whose reply to a user's question, when tools are bound, must be a tool call (decoding is
    constrained to the format); after a tool result it answers freely. Subclasses write `_complete`."""

    tokenizer: Any = Field(default=None, exclude=True)
    max_new_tokens: int = Field(default=48, ge=1)
    model_config = ConfigDict(arbitrary_types_allowed=True)

    def _complete(self, chat: list[dict], fmt: ToolCallFormat | None, max_new: int) -> str:
        raise NotImplementedError

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager=None,
                  tools: Sequence[dict] | None = None, **kwargs: Any) -> ChatResult:
        must_call = bool(tools) and bool(messages) and isinstance(messages[-1], HumanMessage)
        fmt = tool_call_format(tools) if must_call else None
        text = self._complete(to_chat_dicts(messages, tools), fmt, kwargs.get("max_new_tokens", self.max_new_tokens))
        calls, invalid = [], []
        if tools:
            text, calls, invalid = parse_tool_calls(text)
        message = AIMessage(content=text.strip(), tool_calls=calls, invalid_tool_calls=invalid,
                            response_metadata={"constrained": must_call})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Sequence, **kwargs: Any):
        """This model, with the tools' JSON schemas passed to every call."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


class LlamaToolChat(_ForcedToolCallChat):
    """Our `llama.Llama` (greedy) with SmolLM2's tokenizer; tool calls by `constrained.constrained_greedy`."""

    llama: Any = Field(exclude=True)
    _texts: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "course-llama-constrained"

    def _complete(self, chat: list[dict], fmt: ToolCallFormat | None, max_new: int) -> str:
        import torch

        ids = list(self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True)["input_ids"])
        eos = self.tokenizer.eos_token_id
        if fmt is not None:
            if self._texts is None:
                self._texts = token_texts(self.tokenizer)
            return constrained_greedy(self.llama, ids, fmt, self._texts, eos, max_new_tokens=max(max_new, 64))
        output = self.llama.generate(torch.tensor([ids]), max_new, eos_id=eos)
        return self.tokenizer.decode(output[0, len(ids):], skip_special_tokens=True)


class LlamaCppToolChat(_ForcedToolCallChat):
    """A `llamacpp.LlamaCpp` (greedy, the GGUF's chat template); tool calls by a GBNF grammar."""

    llm: Any = Field(exclude=True)

    @property
    def _llm_type(self) -> str:
        return "course-llamacpp-grammar"

    def _complete(self, chat: list[dict], fmt: ToolCallFormat | None, max_new: int) -> str:
        if fmt is not None:
            return self.llm.chat(chat, max_tokens=max(max_new, 64), grammar=fmt.gbnf())
        return self.llm.chat(chat, max_tokens=max_new)


# --- tools ----------------------------------------------------------------------------------------

_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
              ast.USub: operator.neg, ast.UAdd: operator.pos}


def evaluate_arithmetic(expression: str) -> float | int:
    """Evaluate + - * / // % ** and parentheses on numbers, without `eval` (nothing else is allowed)."""
    def walk(node):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponents above 100 are not allowed")
            return _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.operand))
        raise ValueError(f"{ast.unparse(node)!r} is not a number or an arithmetic operation")

    check_text("expression", expression)
    try:
        return walk(ast.parse(expression.strip(), mode="eval").body)
    except SyntaxError:
        raise ValueError("it is not valid arithmetic") from None


def _validation_message(error) -> str:
    problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in error.errors())
    return f"Error: the tool's arguments were not valid ({problems}). Call it again with the arguments it describes."


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '12 * (3 + 4)' and return the number."""
    try:
        value = evaluate_arithmetic(expression)
    except (ValueError, ZeroDivisionError, OverflowError) as error:
        raise ToolException(f"Error: cannot evaluate {expression!r}: {error}. Use numbers, + - * / ** and "
                            "parentheses, for example '12 * (3 + 4)'.") from None
    return str(round(value, 10) if isinstance(value, float) else value)


def load_glossary(name: str = "llm_glossary.tsv") -> dict[str, str]:
    """The course glossary from `data/`: term -> one-sentence definition."""
    return {row["term"]: row["definition"] for row in data.read_tsv(name)}


@tool
def glossary(term: str) -> str:
    """Look up the definition of a term about language models (e.g. 'LoRA', 'KV cache') in the course glossary."""
    entries = load_glossary()
    by_key = {key.lower(): key for key in entries}
    wanted = " ".join(str(term).strip().lower().split())
    if wanted in by_key:
        return f"{by_key[wanted]}: {entries[by_key[wanted]]}"
    close = difflib.get_close_matches(wanted, list(by_key), n=3, cutoff=0.6)
    hint = (f"Did you mean {', '.join(repr(by_key[c]) for c in close)}?" if close
            else f"Known terms: {', '.join(sorted(entries, key=str.lower))}.")
    raise ToolException(f"Error: no glossary entry for {term!r}. {hint}")


for _tool in (calculator, glossary):
    _tool.handle_tool_error = True  # a ToolException becomes the tool's answer, marked status="error"
    _tool.handle_validation_error = _validation_message


# --- the agent loop -------------------------------------------------------------------------------

def run_agent(model: BaseChatModel, tools: Sequence[BaseTool], messages: Sequence[BaseMessage] | str,
              max_steps: int = 4) -> list[BaseMessage]:
    """Call the model with the tools bound; run every tool call it makes, append the results as
    ToolMessages and call it again, until it answers without a tool call or `max_steps` calls are made.

    Returns the whole conversation. Unknown tools and unparsable calls are answered with an error
    message to the model, never raised.
    """
    check_positive_int("max_steps", max_steps)
    by_name = {t.name: t for t in tools}
    history: list[BaseMessage] = [HumanMessage(messages)] if isinstance(messages, str) else list(messages)
    bound = model.bind_tools(list(tools))
    for _ in range(max_steps):
        reply = bound.invoke(history)
        history.append(reply)
        if not reply.tool_calls and not reply.invalid_tool_calls:
            break
        for call in reply.tool_calls:
            if call["name"] in by_name:
                history.append(by_name[call["name"]].invoke(call))
            else:
                history.append(ToolMessage(f"Error: there is no tool named {call['name']!r}; the tools are "
                                           f"{', '.join(sorted(by_name))}.", tool_call_id=call["id"], name=call["name"],
                                           status="error"))
        for bad in reply.invalid_tool_calls:
            history.append(ToolMessage(f"Error: the tool call could not be read ({bad['error']}). Write it as "
                                       '<tool_call>{"name": ..., "arguments": {...}}</tool_call>.',
                                       tool_call_id=bad["id"] or "invalid", status="error"))
    return history


def transcript(messages: Sequence[BaseMessage], width: int = 110) -> str:
    """A readable, one line per message view of a conversation, tool calls and results included."""
    lines = []
    for message in messages:
        kind = {SystemMessage: "system", HumanMessage: "user", AIMessage: "model", ToolMessage: "tool"}.get(
            type(message), type(message).__name__)
        text = " ".join(_content(message).split())
        if isinstance(message, AIMessage):
            calls = [f"{c['name']}({json.dumps(c['args'])})" for c in message.tool_calls]
            calls += [f"<unreadable call: {c['error']}>" for c in message.invalid_tool_calls]
            text = " ".join(filter(None, [text, *(f"→ calls {c}" for c in calls)]))
        if isinstance(message, ToolMessage):
            kind = f"tool {message.name or ''}".strip() + (" (error)" if message.status == "error" else "")
        line = f"{kind:>16} | {text}"
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines)
