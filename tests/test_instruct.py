"""course_lib.instruct: the SFT template and mask, and the safe answer checker; with
scripts/build_instruct_data.py, the task generator that writes the data files."""

import importlib.util
import shutil
from pathlib import Path

import pytest

from course_lib import instruct
from course_lib.data import data_path, read_jsonl

_spec = importlib.util.spec_from_file_location(
    "build_instruct_data", Path(__file__).resolve().parents[1] / "scripts" / "build_instruct_data.py")
builder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builder)


class CharTokenizer:
    """One id per character: enough to see exactly where the prompt mask falls."""

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(map(chr, ids))


def test_the_loss_mask_covers_the_prompt_and_grades_only_the_answer():
    tok = CharTokenizer()
    inputs, targets = instruct.sft_example(tok, "Say hi", "hi", context_length=200)
    prompt = instruct.format_prompt("Say hi")
    assert tok.decode(inputs) + instruct.END[-1] == instruct.format_example("Say hi", "hi")
    graded = [t for t in targets if t != instruct.IGNORE_INDEX]
    assert tok.decode(graded) == "hi" + instruct.END
    assert targets.count(instruct.IGNORE_INDEX) == len(prompt) - 1  # every prompt position after the first


def test_without_the_mask_every_token_is_graded_and_the_inputs_are_the_same():
    tok = CharTokenizer()
    masked_in, masked = instruct.sft_example(tok, "Say hi", "hi", context_length=200)
    inputs, targets = instruct.sft_example(tok, "Say hi", "hi", context_length=200, mask_prompt=False)
    assert inputs == masked_in and instruct.IGNORE_INDEX not in targets
    assert targets == inputs[1:] + [masked[-1]]  # the inputs shifted left
    assert [t for t in masked if t != instruct.IGNORE_INDEX] == targets[-len("hi" + instruct.END):]
    _, batch_targets = instruct.sft_batch(tok, [("a", "b"), ("longer question", "yes")], 200, mask_prompt=False)
    short = len(instruct.format_example("a", "b")) - 1
    assert (batch_targets[0, :short] != instruct.IGNORE_INDEX).all()  # padding after it is still ignored
    assert (batch_targets[0, short:] == instruct.IGNORE_INDEX).all()


def test_a_batch_pads_inputs_and_ignores_padding_in_the_targets():
    inputs, targets = instruct.sft_batch(CharTokenizer(), [("a", "b"), ("longer question", "yes")], 200, pad_id=0)
    assert inputs.shape == targets.shape and inputs.shape[0] == 2
    short = len(instruct.format_example("a", "b")) - 1
    assert (inputs[0, short:] == 0).all() and (targets[0, short:] == instruct.IGNORE_INDEX).all()


def test_cut_answer_stops_at_the_end_marker_or_the_next_heading():
    assert instruct.cut_answer("def f():\n    return 1<|endoftext|>more") == "def f():\n    return 1"
    assert instruct.cut_answer("x = 1\n### Instruction:\nnext") == "x = 1"


def test_the_generator_is_seeded_distinct_and_honours_exclusions():
    first, again = builder.make_tasks(50, seed=3), builder.make_tasks(50, seed=3)
    assert first == again
    assert len({t.instruction for t in first}) == 50
    other = builder.make_tasks(50, seed=4, exclude={t.instruction for t in first})
    assert not {t.instruction for t in first} & {t.instruction for t in other}


@pytest.mark.parametrize("op", instruct.OPS, ids=[op.key for op in instruct.OPS])
def test_every_generated_answer_passes_its_own_checker(op):
    task = builder.make_task(op, op.names[0], builder.INSTRUCTION_FORMS[0], op.phrases[0])
    assert instruct.check_answer(task, task.response)


def test_wrong_answers_fail_the_checker():
    task = builder.make_task(instruct.OPS_BY_KEY["add"], "add", builder.INSTRUCTION_FORMS[0], "a plus b")
    assert instruct.check_answer(task, "def add(a, b):\n    return b + a")  # any correct body passes
    assert not instruct.check_answer(task, "def add(a, b):\n    return a - b")
    assert not instruct.check_answer(task, "def plus(a, b):\n    return a + b")  # not the requested name
    assert not instruct.check_answer(task, "Create a python function to add two numbers.")
    assert not instruct.check_answer(task, "def add(a, b)\n    return")


@pytest.mark.parametrize("code", [
    "import os\ndef f(x):\n    return x",
    "def f(x):\n    while True:\n        pass",
    "def f(x):\n    return __import__('os')",
    "def f(x):\n    return x.__class__",
    "def f(x):\n    return open('file')",
    "def f(x):\n    return 10 ** 100000000",
    "def f(x):\n    for i in range(10):\n        x += i\n    return x",
])
def test_the_checker_refuses_to_run_anything_outside_its_whitelist(code):
    assert instruct.safe_function(code, "f") is None


def test_the_shipped_files_agree_with_the_generator_and_splits_do_not_overlap(tmp_path):
    rows = read_jsonl("instructions.jsonl")
    generated = [r for r in rows if r["source"] == "generated"]
    assert all(instruct.check_answer(r, r["response"]) for r in generated)
    train = {r["instruction"] for r in rows if r["split"] == "train"}
    test = {r["instruction"] for r in rows if r["split"] == "test"}
    assert not train & test
    assert "Create a python function to generate the Fibonacci sequence." in test  # never trained on
    prefs = read_jsonl("preferences.jsonl")
    assert all({"prompt", "chosen", "rejected"} <= set(p) and p["chosen"] != p["rejected"] for p in prefs)
    # rebuilding from the hand-written rows and the seed reproduces both files byte for byte
    for name in ("instructions.jsonl", "preferences.jsonl"):
        shutil.copy(data_path(name), tmp_path / name)
    builder.build_data(tmp_path)
    for name in ("instructions.jsonl", "preferences.jsonl"):
        assert (tmp_path / name).read_text() == data_path(name).read_text(), name


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="instruction: expected a non-empty string"):
        instruct.format_prompt("  ")
    with pytest.raises(ValueError, match="n: expected a positive int"):
        builder.make_tasks(0)
    with pytest.raises(ValueError, match="pairs: expected at least one"):
        instruct.sft_batch(CharTokenizer(), [], 10)
    with pytest.raises(TypeError, match="mask_prompt: expected True or False, got 'no'"):
        instruct.sft_example(CharTokenizer(), "a", "b", 10, mask_prompt="no")


class ParrotModel:
    """Answers every prompt with a fixed text: enough to test the plumbing of answer() and score()."""

    class config:
        context_length = 1000

    def __init__(self, text):
        self.text = text

    def generate(self, ids, max_new_tokens, temperature=0.0, generator=None, eos_id=None):
        import torch

        return torch.cat([ids, torch.tensor([CharTokenizer().encode(self.text)])], dim=1)


def test_score_runs_the_model_through_the_template_and_checks_each_answer():
    rows = [r for r in read_jsonl("instructions.jsonl") if r["split"] == "test" and "task" in r][:3]
    right = ParrotModel(rows[0]["response"] + instruct.END + "\ntrailing text")
    assert instruct.answer(right, CharTokenizer(), rows[0]["instruction"]) == rows[0]["response"]
    fraction, details = instruct.score(right, CharTokenizer(), rows)
    assert details[0]["passed"] and len(details) == 3
    assert fraction == sum(d["passed"] for d in details) / 3
    assert instruct.score(ParrotModel("I do not know."), CharTokenizer(), rows)[0] == 0.0


def test_encode_answers_pads_whole_examples_and_counts_their_tokens():
    ids, lengths = instruct.encode_answers(CharTokenizer(), [("q", "a"), ("question", "answer")], 500)
    full = [instruct.format_example("q", "a"), instruct.format_example("question", "answer")]
    assert lengths.tolist() == [len(t) for t in full]
    assert CharTokenizer().decode(ids[0, :lengths[0]].tolist()) == full[0]
    assert (ids[0, lengths[0]:] == 0).all()


def test_checking_odd_code_prints_no_warning(recwarn):
    assert instruct.safe_function("def f(x):\n    return 2[0]", "f") is not None  # valid, though it fails when run
    assert not instruct.check_answer({"task": {"op": "double", "name": "f"}}, "def f(x):\n    return 2[0]")
    assert not [w for w in recwarn if issubclass(w.category, SyntaxWarning)]
