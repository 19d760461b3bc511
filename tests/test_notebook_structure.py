"""Every notebook of the course outline exists and has the shape STYLE.md asks for (a missing one fails).

Title, learning objectives, a runtime line, a heading for each topic of the course's topic list
(course_lib.outline), at least three exercises with checkers, a solutions notebook, a recap,
stored outputs, no stored errors, and execution counts from one top-to-bottom run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from course_lib.outline import NOTEBOOKS, missing_topics

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
IDS = [n.stem for n in NOTEBOOKS]


def load(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def headings(cells: list[dict]) -> list[str]:
    return [line.lstrip("#").strip() for c in cells if c["cell_type"] == "markdown"
            for line in source(c).splitlines() if line.startswith("#")]


def code_cells(cells: list[dict]) -> list[dict]:
    return [c for c in cells if c["cell_type"] == "code"]


def existing(notebook) -> Path:
    path = NOTEBOOK_DIR / notebook.filename
    assert path.exists(), f"{path.relative_to(ROOT)} is in the course outline (course_lib/outline.py) but missing"
    return path


def after_heading(cells: list[dict], word: str) -> list[dict]:
    """The cells from the first heading that contains `word` up to the next heading of that level."""
    for i, cell in enumerate(cells):
        text = source(cell)
        found = re.search(rf"^(#+)\s.*{word}", text, re.I | re.M) if cell["cell_type"] == "markdown" else None
        if found:
            level = found.group(1)
            rest = []
            for later in cells[i + 1:]:
                if later["cell_type"] == "markdown" and re.match(rf"^#{{1,{len(level)}}}\s", source(later)):
                    break
                rest.append(later)
            return rest
    return []


def check_executed_in_one_run(cells: list[dict], name: str) -> None:
    code = code_cells(cells)
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{name}: execution counts {counts} are not one top-to-bottom run"
    errors = [i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert not errors, f"{name}: code cells {errors} stored an error"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_notebook_opens_with_title_objectives_and_runtime_line(notebook):
    cells = load(existing(notebook))
    first = source(cells[0])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# "), "the first cell is a '# Title' markdown cell"
    intro = "\n".join(source(c) for c in cells[:3] if c["cell_type"] == "markdown")
    assert re.search(r"objectives|you will", intro, re.I), "the introduction lists learning objectives"
    assert re.search(r"runs in about \d+(\.\d+)? min", intro, re.I), "the introduction says 'Runs in about N min ...'"
    assert re.search(r"gpu", intro, re.I), "the runtime line says what changes on a GPU"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_every_topic_of_the_course_list_has_a_heading(notebook):
    missing = missing_topics(notebook, headings(load(existing(notebook))))
    assert not missing, f"{notebook.filename}: no heading names the topic(s) {missing}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_setup_cell_seeds_and_reports_versions(notebook):
    code = code_cells(load(existing(notebook)))
    setup = source(code[0])
    assert "set_seed" in setup, "the first code cell calls set_seed"
    assert code[0].get("outputs"), "the setup cell prints the versions that matter"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_at_least_three_exercises_with_checkers_and_a_recap(notebook):
    cells = load(existing(notebook))
    exercise_cells = after_heading(cells, "exercises")
    checked = [c for c in code_cells(exercise_cells) if "exercises." in source(c) or "check_" in source(c)]
    assert len(checked) >= 3, f"an '## Exercises' section with >= 3 checker calls (found {len(checked)})"
    assert any(re.search(r"^#+\s.*recap", source(c), re.I | re.M) for c in cells if c["cell_type"] == "markdown"), \
        "a '## Recap' section"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_outputs_are_stored_from_one_clean_run(notebook):
    cells = load(existing(notebook))
    code = code_cells(cells)
    with_output = sum(1 for c in code if c.get("outputs"))
    assert with_output >= 0.7 * len(code), f"only {with_output} of {len(code)} code cells show something"
    check_executed_in_one_run(cells, notebook.filename)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_solutions_notebook_exists_and_every_exercise_passes(notebook):
    existing(notebook)
    path = NOTEBOOK_DIR / "solutions" / notebook.solutions_filename
    assert path.exists(), f"solutions notebook {path.relative_to(ROOT)} is missing"
    cells = load(path)
    check_executed_in_one_run(cells, path.name)
    shown = "\n".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                      for c in code_cells(cells) for o in c.get("outputs", []) if o.get("output_type") == "stream")
    shown += "\n".join("".join(o.get("data", {}).get("text/plain", "")) for c in code_cells(cells)
                       for o in c.get("outputs", []) if o.get("output_type") in ("execute_result", "display_data"))
    assert shown.count("✅") >= 3, "the solutions notebook shows at least three passed checkers"
    assert "❌" not in shown and "⏳" not in shown, "every exercise passes in the solutions notebook"


ALL_NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb")) + sorted((NOTEBOOK_DIR / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=[p.stem for p in ALL_NOTEBOOKS])
def test_nbval_markers_are_written_so_that_nbval_sees_them(path):
    # nbval reads a comment line that is exactly "# NBVAL_IGNORE_OUTPUT"; "# NBVAL_IGNORE_OUTPUT: why" is
    # silently an ordinary comment, and the cell's changing output is then compared.
    for cell in code_cells(load(path)):
        for line in source(cell).splitlines():
            if "NBVAL_" in line and line.lstrip().startswith("#"):
                marker = line.strip().lstrip("#").strip()
                assert marker in ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION"), \
                    f"{path.name}: {line.strip()!r} is not a marker nbval recognises; put the reason on the next line"


# What each notebook does on the course's GPU (issue: the GPU track): the cell's code must be in the notebook,
# so the GPU check (`python -m course_lib.bench notebooks --profile gpu`) runs it on the instance.
GPU_CELLS = {
    "07_transformer.ipynb": ["DEVICE = runtime.get_device()", ".to(DEVICE)"],
    "08_pretraining_to_instruct.ipynb": ["DEVICE = runtime.get_device()", "gpt = gpt.to(DEVICE)",
                                         "torch.cuda.max_memory_allocated()", "lora.fine_tuning_bytes"],
    "09_prompts.ipynb": ["llama.load_litgpt_checkpoint", "llama.random_llama", "generation_speed"],
    "11_scaling.ipynb": ["matmul_tflops(dtype, 'cuda'", "Int4WeightOnlyConfig", "allow_tf32"],
}


@pytest.mark.parametrize("name", sorted(GPU_CELLS))
def test_the_gpu_profile_has_its_cells_and_they_say_what_they_need_on_a_cpu(name):
    code = "\n".join(source(c) for c in code_cells(load(NOTEBOOK_DIR / name)))
    for needed in GPU_CELLS[name]:
        assert needed in code, f"{name}: no cell with {needed!r}"
    for cell in code_cells(load(NOTEBOOK_DIR / name)):
        text = source(cell)
        if '"cuda"' in text and "!= \"cuda\"" in text:  # a GPU-only cell: on a CPU it prints what it needs
            assert "ec2/README.md" in text, f"{name}: a GPU-only cell does not point to ec2/README.md:\n{text[:200]}"
            assert cell.get("outputs"), f"{name}: a GPU-only cell has no stored output"
