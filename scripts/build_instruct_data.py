"""Write data/instructions.jsonl and data/preferences.jsonl, the instruct data of notebook 08.

    .venv/bin/python scripts/build_instruct_data.py

Hand-written rows already in the files (source "hand") are kept; the generated ones are made again
from a fixed seed, so the files come out byte for byte the same (tests/test_instruct.py checks it).
Generated tasks come from the task kinds in `course_lib.instruct.OPS` (what `check_answer` grades);
each preference row pairs a task's correct answer with a worse one of a kind people reject.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_lib.data import data_dir
from course_lib.instruct import OPS, OPS_BY_KEY, Op, Task
from course_lib.validation import check_positive_int

GENERIC_NAMES = ("f", "g", "solve", "compute", "calc", "helper", "answer", "apply", "process", "func",
                 "my_function", "evaluate", "transform", "run", "do_task", "result_of", "work", "op")
INSTRUCTION_FORMS = (
    "Write a Python function {name}({args}) that returns {phrase}.",
    "Create a python function {name} that takes {args} and returns {phrase}.",
    "Define a function {name}({args}) which returns {phrase}.",
    "Implement {name}({args}): it should return {phrase}.",
)


def make_task(op: Op, name: str, form: str, phrase: str) -> Task:
    args = ", ".join(op.args)
    instruction = form.format(name=name, args=args, phrase=phrase)
    response = f"def {name}({args}):\n    return {op.body}"
    return Task(instruction, response, op.key, name)


def make_tasks(n: int, seed: int = 0, exclude: set[str] | None = None) -> list[Task]:
    """`n` distinct generated tasks (a fixed seed gives the same list every time), none in `exclude`."""
    check_positive_int("n", n)
    rng = random.Random(seed)
    exclude = set(exclude or ())
    tasks: list[Task] = []
    for _ in range(200 * n):
        if len(tasks) == n:
            break
        op = rng.choice(OPS)
        name = rng.choice(op.names) if rng.random() < 0.5 else rng.choice(GENERIC_NAMES)
        task = make_task(op, name, rng.choice(INSTRUCTION_FORMS), rng.choice(op.phrases))
        if task.instruction not in exclude:
            exclude.add(task.instruction)
            tasks.append(task)
    if len(tasks) < n:
        raise ValueError(f"n: only {len(tasks)} distinct tasks could be made, asked for {n}")
    return tasks



# --- preference pairs for the reward model --------------------------------------------------------

def rejected_answers(task: Task, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, answer) pairs of worse answers to `task`, the kinds people reject: a wrong operation
    (always first), a follow-up question instead of an answer (what a pre-trained model does), prose
    without code, broken code, rambling repetition, the function under another name."""
    op = OPS_BY_KEY[task.op]
    args = ", ".join(op.args)
    wrong = rng.choice([o for o in OPS if o.args == op.args and o.key != op.key])
    other = rng.choice([o for o in OPS if o.key != op.key])
    follow_up = make_task(other, rng.choice(GENERIC_NAMES), rng.choice(INSTRUCTION_FORMS),
                          rng.choice(other.phrases)).instruction
    return [
        ("wrong operation", f"def {task.name}({args}):\n    return {wrong.body}"),
        ("follow-up question", follow_up),
        ("prose, no code", f"The function {task.name} should return {rng.choice(op.phrases)}."),
        ("broken code", f"def {task.name}({args})\n    return"),
        ("repetition", f"def {task.name}({args}):\n    return {op.body}\n    return {op.body}\n    return {op.body}"),
        ("wrong name", (f"def {rng.choice([n for n in GENERIC_NAMES + op.names if n != task.name])}({args}):\n"
                        f"    return {op.body}")),
    ]


def make_preferences(tasks: Sequence[Task], seed: int = 0) -> list[dict]:
    """(prompt, chosen, rejected) rows, two per task: the correct answer against a wrong operation (the
    subtle mistake a tuned model makes most) and against one of the other kinds of bad answer."""
    rng = random.Random(seed)
    rows = []
    for task in tasks:
        bad = rejected_answers(task, rng)
        for kind, rejected in [bad[0], rng.choice(bad[1:])]:
            rows.append({"prompt": task.instruction, "chosen": task.response, "rejected": rejected,
                         "kind": kind, "task": {"op": task.op, "name": task.name}})
    return rows


# --- the data files ------------------------------------------------------------------------------

def write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def read_jsonl_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_data(folder: Path, n_train: int = 600, n_test: int = 60, n_pref_train: int = 400,
               n_pref_test: int = 100, seed: int = 0) -> dict[str, int]:
    """Rewrite instructions.jsonl and preferences.jsonl in `folder`: the hand-written rows already
    there (source "hand") are kept, the generated ones are made again from `seed`; returns row counts."""
    hand = [r for r in read_jsonl_rows(folder / "instructions.jsonl") if r.get("source") == "hand"]
    seen = {row["instruction"] for row in hand}
    test = make_tasks(n_test, seed=seed + 1, exclude=set(seen))
    train = make_tasks(n_train, seed=seed, exclude=seen | {t.instruction for t in test})
    rows = hand + [{**t.to_dict(), "source": "generated", "split": "train"} for t in train]
    rows += [{**t.to_dict(), "source": "generated", "split": "test"} for t in test]
    write_jsonl(folder / "instructions.jsonl", rows)

    prefs = [r for r in read_jsonl_rows(folder / "preferences.jsonl") if r.get("source") == "hand"]
    used = {t.instruction for t in train} | {t.instruction for t in test} | {r["prompt"] for r in prefs}
    pref_tasks = make_tasks(n_pref_train + n_pref_test, seed=seed + 2, exclude=used)
    for split, chunk in (("train", pref_tasks[:n_pref_train]), ("test", pref_tasks[n_pref_train:])):
        prefs += [{**row, "source": "generated", "split": split}
                  for row in make_preferences(chunk, seed=seed + (3 if split == "train" else 4))]
    write_jsonl(folder / "preferences.jsonl", prefs)
    return {"instructions.jsonl": len(rows), "preferences.jsonl": len(prefs)}


if __name__ == "__main__":  # pragma: no cover - rebuilds the data files
    for file, count in build_data(data_dir()).items():
        print(f"data/{file}: {count} rows")
