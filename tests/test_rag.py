"""course_lib.rag and course_lib.agents: vector stores, chunks, recall, the chat model, tools.

The numpy store is checked against Qdrant and against sentence-transformers' own search; the chat
model against langchain-huggingface's ChatHuggingFace on the same weights. The whole module runs
with sockets refused, as CI runs it without a network.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from course_lib import rag
from course_lib.agents import (ScriptedChatModel, SmolLM2Chat, calculator, evaluate_arithmetic,
                                          glossary, load_glossary, parse_tool_calls, run_agent, to_chat_dicts,
                                          transcript)


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Every socket connection or name lookup in this module fails loudly."""
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test that must run offline")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setattr(socket, "create_connection", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        yield


@pytest.fixture(scope="module")
def minilm(no_network):
    from course_lib import pretrained

    return pretrained.load_minilm()


@pytest.fixture(scope="module")
def smollm2(no_network, smollm2_pair):
    return smollm2_pair


@pytest.fixture(scope="module")
def chunks():
    return rag.chunk_documents(rag.load_course_notes())


def qdrant_with(vectors, payloads, path=None, name="test"):
    client = rag.open_qdrant(path)
    rag.create_collection(client, name, vectors.shape[1])
    rag.upsert(client, name, vectors, payloads)
    return client


# --- numpy store and Qdrant ---------------------------------------------------------------------

def test_the_network_guard_itself_refuses_connections():
    with pytest.raises(OSError, match="network access attempted"):
        socket.create_connection(("example.com", 80))


def test_numpy_store_and_qdrant_return_the_same_neighbours_on_random_vectors():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 32)).astype(np.float32)
    payloads = [{"group": int(i % 3)} for i in range(300)]
    store = rag.NumpyVectorStore(32)
    assert store.add(vectors, payloads) == list(range(300))
    client = qdrant_with(vectors, payloads)
    for query in rng.standard_normal((20, 32)):
        for where in (None, {"group": 1}):
            ours, theirs = store.search(query, k=7, where=where), rag.qdrant_search(client, "test", query, k=7, where=where)
            assert [h.id for h in ours] == [h.id for h in theirs]
            np.testing.assert_allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-5)
            assert all(h.payload == payloads[h.id] for h in theirs)
            if where:
                assert all(h.payload["group"] == 1 for h in ours)
    client.close()


def test_numpy_scores_are_cosine_similarities():
    rng = np.random.default_rng(1)
    vectors, query = rng.standard_normal((50, 8)), rng.standard_normal(8)
    store = rag.NumpyVectorStore(8)
    store.add(vectors)
    cosine = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    hits = store.search(query, k=50)
    assert [h.id for h in hits] == list(np.argsort(-cosine))
    np.testing.assert_allclose([h.score for h in hits], np.sort(cosine)[::-1], atol=1e-5)


def test_numpy_store_and_qdrant_agree_with_sentence_transformers_on_real_embeddings(minilm, chunks):
    from sentence_transformers import util

    vectors = rag.embed(minilm, [c.page_content for c in chunks])
    questions = rag.embed(minilm, [q["question"] for q in rag.load_questions()])
    assert vectors.shape == (len(chunks), 384)
    store = rag.NumpyVectorStore(384)
    store.add(vectors, [c.metadata for c in chunks])
    client = qdrant_with(vectors, [c.metadata for c in chunks])
    reference = util.semantic_search(questions, vectors, top_k=5)  # sentence-transformers' own cosine search
    for query, expected in zip(questions, reference):
        ours = store.search(query, k=5)
        assert [h.id for h in ours] == [h.id for h in rag.qdrant_search(client, "test", query, k=5)]
        assert [h.id for h in ours] == [e["corpus_id"] for e in expected]
        np.testing.assert_allclose([h.score for h in ours], [e["score"] for e in expected], atol=1e-5)
    notebook = chunks[0].metadata["notebook"]
    filtered = rag.qdrant_search(client, "test", questions[0], k=3, where={"notebook": notebook})
    assert filtered and all(h.payload["notebook"] == notebook for h in filtered)
    client.close()


def test_a_collection_on_disk_survives_closing_and_reopening_the_client(tmp_path):
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((40, 16)).astype(np.float32)
    payloads = [{"n": i} for i in range(40)]
    client = qdrant_with(vectors, payloads, path=tmp_path / "db", name="notes")
    query = rng.standard_normal(16)
    before = rag.qdrant_search(client, "notes", query, k=5)
    client.close()
    reopened = rag.open_qdrant(tmp_path / "db")
    assert reopened.count("notes").count == 40
    after = rag.qdrant_search(reopened, "notes", query, k=5)
    assert [(h.id, h.payload) for h in after] == [(h.id, h.payload) for h in before]
    np.testing.assert_allclose([h.score for h in after], [h.score for h in before], atol=1e-6)  # stored as float32
    with pytest.raises(ValueError, match="collection 'notes' already exists"):
        rag.create_collection(reopened, "notes", 16)
    reopened.close()


def test_bad_vectors_and_arguments_are_refused_by_name():
    store = rag.NumpyVectorStore(4)
    with pytest.raises(ValueError, match=r"vectors: expected an array of shape \(n, 4\)"):
        store.add(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-zero"):
        store.add(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="payloads: expected one per vector"):
        store.add(np.ones((2, 4)), [{}])
    store.add(np.eye(4))
    with pytest.raises(ValueError, match="k: expected a positive int"):
        store.search(np.ones(4), k=0)
    with pytest.raises(ValueError, match="where: expected a non-empty dict"):
        rag.payload_filter({})
    with pytest.raises(TypeError, match="path: expected a folder path"):
        rag.open_qdrant(3)


# --- documents, chunks, recall, scores ------------------------------------------------------------

def test_chunks_keep_their_section_and_stay_within_the_size(chunks):
    sections = rag.load_course_notes()
    assert len(chunks) > len(sections) >= 20
    assert all(len(c.page_content) <= 400 for c in chunks)
    assert {c.metadata["section"] for c in chunks} == {s.metadata["section"] for s in sections}
    assert [c.metadata["chunk"] for c in chunks] == list(range(len(chunks)))
    joined = {s.metadata["section"]: " ".join(s.page_content.split()) for s in sections}
    assert all(" ".join(c.page_content.split()) in joined[c.metadata["section"]] for c in chunks)


def test_every_question_is_answered_by_a_section_that_contains_its_answer():
    sections = {s.metadata["section"]: s.page_content for s in rag.load_course_notes()}
    for q in rag.load_questions():
        assert q["section"] in sections, q
        assert rag.answer_score(sections[q["section"]], q["answer"]) == 1.0, q


def test_recall_at_k_counts_the_gold_label_among_the_first_k():
    retrieved = [["a", "b", "c"], ["c", "a", "b"], ["b", "c", "a"]]
    gold = ["a", "a", "a"]
    assert [rag.recall_at_k(retrieved, gold, k) for k in (1, 2, 3)] == [1 / 3, 2 / 3, 1.0]
    with pytest.raises(ValueError, match="one ranked list per gold label"):
        rag.recall_at_k(retrieved, gold[:2], 1)


def test_answer_score_is_the_share_of_reference_words_and_numbers_found():
    assert rag.answer_score("SmolLM2 has 49152 tokens.", "49,152") == 1.0
    assert rag.answer_score("It cost $5 million.", "5 million dollars") == pytest.approx(2 / 3)
    assert rag.answer_score("The Q4_1 format uses 8 bits.", "4") == 0.0  # '4' inside 'Q4_1' does not count
    assert rag.answer_score("from -1 to 1", "from -1 to 1") == 1.0
    with pytest.raises(ValueError, match="no content words"):
        rag.answer_score("anything", "the of")


def test_rag_prompt_puts_numbered_passages_before_the_question():
    messages = rag.rag_prompt().invoke({"context": rag.format_context(["alpha  beta", "gamma"]),
                                        "question": "Which?"}).to_messages()
    assert isinstance(messages[0], SystemMessage) and isinstance(messages[1], HumanMessage)
    assert messages[1].content == "Context:\n[1] alpha beta\n\n[2] gamma\n\nQuestion: Which?"


# --- the chat model -------------------------------------------------------------------------------

def test_the_chat_model_returns_langchain_messages_equal_to_chat_hugging_face(smollm2):
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from transformers import pipeline

    model, tokenizer = smollm2
    chat = SmolLM2Chat(model=model, tokenizer=tokenizer, max_new_tokens=12)
    conversation = [SystemMessage("Answer briefly."), HumanMessage("What is the capital of France?")]
    reply = chat.invoke(conversation)
    assert isinstance(reply, AIMessage) and isinstance(reply.content, str) and reply.content
    assert reply.usage_metadata["output_tokens"] <= 12
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer, max_new_tokens=12, do_sample=False,
                         return_full_text=False)
    reference = ChatHuggingFace(llm=HuggingFacePipeline(pipeline=generator), tokenizer=tokenizer)
    assert reply.content == reference.invoke(conversation).content.strip()


class ReplayModel:
    """Stands in for a causal LM: `generate` appends fixed token ids to the prompt and records its call."""

    def __init__(self, new_ids):
        self.new_ids, self.prompt, self.kwargs = new_ids, None, None

    def generate(self, input_ids, attention_mask=None, **kwargs):
        import torch

        self.prompt, self.kwargs = input_ids, kwargs
        return torch.cat([input_ids, torch.tensor([self.new_ids])], dim=1)


def test_with_tools_bound_the_prompt_lists_them_and_a_tool_call_reply_becomes_tool_calls():
    from course_lib import pretrained

    tokenizer = pretrained.load_smollm2_tokenizer()
    said = '<tool_call>[{"name": "calculator", "arguments": {"expression": "2 + 2"}}]</tool_call>'
    fake = ReplayModel(tokenizer(said, add_special_tokens=False).input_ids + [tokenizer.eos_token_id])
    reply = SmolLM2Chat(model=fake, tokenizer=tokenizer).bind_tools([calculator, glossary]).invoke("What is 2 + 2?")
    prompt = tokenizer.decode(fake.prompt[0])
    assert "<tools>" in prompt and '"name": "glossary"' in prompt and prompt.endswith("<|im_start|>assistant\n")
    assert fake.kwargs["do_sample"] is False and fake.kwargs["max_new_tokens"] == 48
    assert isinstance(reply, AIMessage) and reply.content == "" and not reply.invalid_tool_calls
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("calculator", {"expression": "2 + 2"})]
    assert reply.response_metadata["finish_reason"] == "stop"


def test_a_local_model_refuses_to_be_forced_to_call_a_tool():
    with pytest.raises(ValueError, match="tool_choice"):
        SmolLM2Chat(model=None, tokenizer=None).bind_tools([calculator], tool_choice="any")


def test_tool_calls_are_parsed_and_bad_ones_reported_not_raised():
    text, calls, invalid = parse_tool_calls('<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"}}'
                                            '</tool_call>')
    assert text == "" and not invalid
    assert calls[0]["name"] == "calculator" and calls[0]["args"] == {"expression": "1+1"}
    text, calls, invalid = parse_tool_calls("Sure! <tool_call>{name: calculator}")
    assert text == "Sure!" and not calls and "Expecting property name" in invalid[0]["error"]


def test_tools_and_tool_results_go_into_the_chat_template_as_text():
    call = {"name": "calculator", "args": {"expression": "6*7"}, "id": "c1", "type": "tool_call"}
    chat = to_chat_dicts([HumanMessage("6*7?"), AIMessage("", tool_calls=[call]), ToolMessage("42", tool_call_id="c1")],
                         tools=[{"type": "function", "function": {"name": "calculator"}}])
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert '"name": "calculator"' in chat[0]["content"]
    assert chat[2]["content"] == '<tool_call>[{"name": "calculator", "arguments": {"expression": "6*7"}}]</tool_call>'
    assert chat[3]["content"] == "<tool_response>\n42\n</tool_response>"


# --- tools and the agent loop ---------------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    ({"expression": "1 / 0"}, "division by zero"),
    ({"expression": "__import__('os')"}, "is not a number or an arithmetic operation"),
    ({"expression": "2 +"}, "not valid arithmetic"),
    ({"expression": "9 ** 999"}, "exponents above 100"),
    ({"expr": "1 + 1"}, "expression: Field required"),
    ({"expression": ["1"]}, "expression: Input should be a valid string"),
])
def test_the_calculator_answers_bad_arguments_with_a_message(args, says):
    result = calculator.invoke({"name": "calculator", "args": args, "id": "c1", "type": "tool_call"})
    assert isinstance(result, ToolMessage) and result.status == "error"
    assert result.content.startswith("Error:") and says in result.content


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=2, max_size=5), st.lists(st.sampled_from("+-*"), min_size=4, max_size=4))
def test_the_calculator_agrees_with_python_arithmetic(numbers, ops):
    expression = str(numbers[0]) + "".join(f" {op} ({n})" for op, n in zip(ops, numbers[1:]))
    assert evaluate_arithmetic(expression) == eval(expression)  # reference: Python itself, on safe input


def test_the_glossary_finds_terms_in_any_case_and_suggests_near_misses():
    entries = load_glossary()
    assert glossary.invoke({"term": "kv CACHE"}) == f"KV cache: {entries['KV cache']}"
    result = glossary.invoke({"name": "glossary", "args": {"term": "LoRa "}, "id": "g", "type": "tool_call"})
    assert result.status != "error" and result.content.startswith("LoRA:")
    missing = glossary.invoke({"name": "glossary", "args": {"term": "quantisation"}, "id": "g", "type": "tool_call"})
    assert missing.status == "error" and "Did you mean 'quantization'?" in missing.content


def test_the_agent_loop_runs_tools_and_reports_unknown_or_unreadable_calls():
    script = ScriptedChatModel(responses=[
        AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "17 * 23"}, "id": "a"},
                                  {"name": "weather", "args": {}, "id": "b"}]),
        AIMessage("", invalid_tool_calls=[{"name": None, "args": "{oops", "id": "c", "error": "bad JSON"}]),
        AIMessage("17 * 23 = 391."),
    ])
    history = run_agent(script, [calculator, glossary], "What is 17 * 23?")
    kinds = [type(m).__name__ for m in history]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "ToolMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert history[2].content == "391" and history[2].tool_call_id == "a"
    assert "no tool named 'weather'" in history[3].content and history[3].status == "error"
    assert "could not be read (bad JSON)" in history[5].content
    assert "calls calculator" in transcript(history)


def test_the_agent_loop_stops_after_max_steps():
    looping = ScriptedChatModel(responses=[AIMessage("", tool_calls=[{"name": "glossary", "args": {"term": "RAG"},
                                                                      "id": "x"}])])
    history = run_agent(looping, [glossary], "Define RAG forever", max_steps=3)
    assert sum(isinstance(m, AIMessage) for m in history) == 3
    with pytest.raises(ValueError, match="max_steps"):
        run_agent(looping, [glossary], "x", max_steps=0)
