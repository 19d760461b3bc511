"""course_lib.progress: a stored notebook shows a training bar's final state, not "0/N"."""

import nbformat
import pytest
import torch
from nbclient import NotebookClient

from course_lib import progress
from course_lib.train import train


def test_outside_a_notebook_the_bar_is_tqdms_text_bar():
    assert not progress.in_notebook()
    bar = progress.bar(range(3), desc="steps")
    assert list(bar) == [0, 1, 2]
    assert bar.n == 3


def test_a_disabled_bar_still_iterates():
    assert list(progress.bar(range(4), disable=True)) == [0, 1, 2, 3]


def test_train_can_run_without_a_bar():
    model = torch.nn.Linear(2, 1)
    history = train(model, lambda: torch.randn(4, 2), 3, loss_fn=lambda m, b: m(b).pow(2).mean(), progress=False)
    assert len(history.losses) == 3


@pytest.fixture(scope="module")
def executed_training_notebook():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import torch\n"
        "from course_lib.train import train\n"
        "model = torch.nn.Linear(2, 1)\n"
        "history = train(model, lambda: torch.randn(4, 2), 25, loss_fn=lambda m, b: m(b).pow(2).mean(), desc='demo')\n"
        "print('trained')")]
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    return notebook.cells[0].outputs


def test_a_stored_training_cell_keeps_the_bars_final_state(executed_training_notebook):
    bars = [o for o in executed_training_notebook if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(bars) == 1, "one widget bar, updated in place rather than shown twice"
    text = bars[0]["data"]["text/plain"]
    assert text.startswith("demo: 100%") and "25/25" in text, text
    assert "loss \u2248 " in text, "the loss changes with the CPU, so it is printed after \u2248 (sanitize.cfg)"
    assert executed_training_notebook[-1]["text"] == "trained\n"
