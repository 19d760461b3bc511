"""course_lib.chat: a chat is a list of messages re-sent through the chat template, trimmed to fit.

The reference for every prompt is the SmolLM2 tokenizer's own `apply_chat_template` on a message list
written out by hand; the model is a stand-in that records what it receives and replies with fixed text.
"""

from types import SimpleNamespace

import pytest
import torch

from course_lib import chat, pretrained


@pytest.fixture(scope="module")
def tokenizer():
    return pretrained.load_smollm2_tokenizer()


class RecordingModel:
    """Stands in for a Llama: remembers every prompt (as token ids) and answers 'Reply 1', 'Reply 2', ..."""

    def __init__(self, tokenizer, max_seq_len: int = 8192):
        self.config = SimpleNamespace(max_seq_len=max_seq_len)
        self.tokenizer, self.prompts = tokenizer, []

    def generate(self, ids, max_new_tokens, eos_id=None, **sampling):
        self.prompts.append(ids[0].tolist())
        reply = self.tokenizer(f"Reply {len(self.prompts)}", add_special_tokens=False)["input_ids"] + [eos_id]
        return torch.cat([ids, torch.tensor([reply[:max_new_tokens]])], dim=1)

    def prompt_text(self, i: int) -> str:
        return self.tokenizer.decode(self.prompts[i])


def template(tokenizer, messages):
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def test_render_is_the_tokenizers_chat_template(tokenizer):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    assert chat.render(tokenizer, messages) == template(tokenizer, messages)
    assert chat.render(tokenizer, messages).endswith("<|im_start|>assistant\n")


def test_count_tokens_is_the_length_of_the_templated_ids(tokenizer):
    messages = [{"role": "user", "content": "How many tokens is this?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert chat.count_tokens(tokenizer, messages) == len(ids)


def test_complete_is_stateless_the_second_request_carries_nothing_of_the_first(tokenizer):
    model = RecordingModel(tokenizer)
    first = chat.complete(model, tokenizer, [{"role": "user", "content": "My name is Ada."}])
    chat.complete(model, tokenizer, [{"role": "user", "content": "What is my name?"}])
    assert first == "Reply 1"
    assert model.prompt_text(1) == template(tokenizer, [{"role": "user", "content": "What is my name?"}])
    assert "Ada" not in model.prompt_text(1)


def test_a_session_resends_the_whole_history_every_time(tokenizer):
    model = RecordingModel(tokenizer)
    session = chat.ChatSession(model, tokenizer, system="You are terse.")
    assert session.send("My name is Ada.") == "Reply 1"
    session.send("What is my name?")
    expected = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Reply 1"},
                {"role": "user", "content": "What is my name?"}]
    assert model.prompt_text(1) == template(tokenizer, expected)
    assert session.messages == expected + [{"role": "assistant", "content": "Reply 2"}]
    assert session.prompt() == template(tokenizer, session.messages)


def test_truncation_drops_the_oldest_turns_in_pairs_and_keeps_the_system_message(tokenizer):
    model = RecordingModel(tokenizer)
    session = chat.ChatSession(model, tokenizer, system="You are terse.", context_window=90, max_new_tokens=10)
    questions = [f"Question number {i}: what is {i} plus {i}?" for i in range(8)]
    for q in questions:
        session.send(q)
        sent = model.prompts[-1]
        assert len(sent) + 10 <= 90, "every prompt plus the reply fits the window"
    assert session.dropped, "a 90-token window cannot hold eight turns"
    kept = session.messages
    assert kept[0] == {"role": "system", "content": "You are terse."}
    assert kept[1]["role"] == "user" and kept[-2]["content"] == questions[-1]
    history = [m for q, i in zip(questions, range(1, 9))
               for m in ({"role": "user", "content": q}, {"role": "assistant", "content": f"Reply {i}"})]
    assert session.dropped + kept[1:] == history, "what was dropped is exactly the oldest part of the history"
    assert len(session.dropped) % 2 == 0


def test_summarize_puts_a_summary_of_the_dropped_turns_into_the_system_message(tokenizer):
    seen = []

    def summarizer(messages):
        seen.append(messages)
        return f"summary #{len(seen)}"

    model = RecordingModel(tokenizer)
    session = chat.ChatSession(model, tokenizer, context_window=80, max_new_tokens=10, on_overflow="summarize",
                               summarizer=summarizer)
    for i in range(6):
        session.send(f"Fact {i}: the number {i} is lucky.")
    assert seen, "the history overflowed, so the summarizer was asked"
    assert seen[0] == [{"role": "user", "content": "Fact 0: the number 0 is lucky."},
                       {"role": "assistant", "content": "Reply 1"}]
    if len(seen) > 1:  # a later summary is made from the previous one plus the next oldest turns
        assert seen[1][0] == {"role": "system", "content": chat.SUMMARY_PREFIX + "summary #1"}
    assert session.messages[0] == {"role": "system", "content": chat.SUMMARY_PREFIX + f"summary #{len(seen)}"}
    assert session.n_tokens() + 10 <= 80


def test_a_message_with_an_unknown_role_is_refused(tokenizer):
    with pytest.raises(ValueError, match=r"role: expected one of \('system', 'user', 'assistant'\), got 'robot'"):
        chat.render(tokenizer, [{"role": "robot", "content": "beep"}])
    session = chat.ChatSession(RecordingModel(tokenizer), tokenizer)
    with pytest.raises(ValueError, match="role: expected one of"):
        session.add("narrator", "Once upon a time")


@pytest.mark.parametrize("empty", ["", "   \n"])
def test_an_empty_message_is_refused(tokenizer, empty):
    session = chat.ChatSession(RecordingModel(tokenizer), tokenizer)
    with pytest.raises(ValueError, match="content: expected a non-empty message"):
        session.send(empty)
    assert session.turns == []


def test_a_message_that_is_not_text_or_a_late_system_message_is_refused(tokenizer):
    with pytest.raises(TypeError, match="content: expected a str, got int"):
        chat.message("user", 42)
    with pytest.raises(ValueError, match=r"messages\[1\]: a system message may only come first"):
        chat.check_messages([{"role": "user", "content": "hi"}, {"role": "system", "content": "obey"}])


def test_a_last_message_longer_than_the_window_is_refused(tokenizer):
    session = chat.ChatSession(RecordingModel(tokenizer), tokenizer, context_window=60, max_new_tokens=10)
    with pytest.raises(ValueError, match="content: the last message alone needs"):
        session.send("word " * 100)


def test_bad_session_settings_are_refused(tokenizer):
    model = RecordingModel(tokenizer)
    with pytest.raises(ValueError, match="on_overflow: expected one of"):
        chat.ChatSession(model, tokenizer, on_overflow="forget")
    with pytest.raises(ValueError, match="context_window: expected an int larger than max_new_tokens=40"):
        chat.ChatSession(model, tokenizer, context_window=30)


def test_parse_json_object_finds_the_first_object_among_words_and_agrees_with_json_loads():
    import json

    for obj in ({"answer": "positive"}, {"answer": 42, "why": "3 + 4 = 7 {not json}"}, {"a": {"b": [1, 2]}}):
        text = json.dumps(obj)
        assert chat.parse_json_object(text) == json.loads(text)
        assert chat.parse_json_object(f"Sure, here it is: {text} Anything else?") == json.loads(text)
    assert chat.parse_json_object("{'answer': 'positive'}") is None  # Python's quotes are not JSON
    assert chat.parse_json_object('{"answer": "positive"') is None
    assert chat.parse_json_object('["positive"]') is None
    assert chat.parse_json_object("no braces at all") is None


@pytest.mark.parametrize("reply, task, expected", [
    ("Positive.", "sentiment", "positive"),
    ("The review is negative, not positive.", "sentiment", "negative"),
    ("It is hard to say.", "sentiment", None),
    ("Tom has 3 + 4 = 7 apples.", "arithmetic", "7"),
    ("3 apples, plus 4, gives 7.\nAnswer: 7 apples", "arithmetic", "7"),
    ("First 15 - 6 = 9, so 9 birds.\nAnswer: 9", "arithmetic", "9"),
    ("A train has 100 seats: 1,000 is wrong.", "arithmetic", "1000"),
    ("Ninety.", "arithmetic", None),
])
def test_extract_answer_reads_the_answer_out_of_a_free_text_reply(reply, task, expected):
    assert chat.extract_answer(reply, task) == expected


def test_the_prompt_eval_set_is_well_formed_and_every_answer_is_extractable():
    from course_lib import data

    rows = data.read_jsonl("prompt_eval.jsonl")
    assert all(set(r) == {"split", "task", "text", "answer"} for r in rows)
    for task, labels in (("sentiment", {"positive", "negative"}), ("arithmetic", None)):
        shots = [r for r in rows if r["task"] == task and r["split"] == "shot"]
        tests = [r for r in rows if r["task"] == task and r["split"] == "test"]
        assert len(shots) == 3 and len(tests) >= 6
        assert not {r["text"] for r in shots} & {r["text"] for r in tests}
        for r in tests:
            assert r["answer"] in labels if labels else r["answer"].isdigit()
            assert chat.extract_answer(r["answer"], task) == r["answer"]
    sentiment = [r["answer"] for r in rows if r["task"] == "sentiment" and r["split"] == "test"]
    assert sentiment.count("positive") == sentiment.count("negative"), "balanced, so 50 % is chance"


def test_the_invented_facts_hold_their_answer_and_the_questions_do_not():
    from course_lib import data

    facts = data.read_jsonl("course_facts.jsonl")
    assert len(facts) >= 1
    for fact in facts:
        assert fact["answer"].lower() in fact["fact"].lower()
        assert fact["answer"].lower() not in fact["question"].lower()
