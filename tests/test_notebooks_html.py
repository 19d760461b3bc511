"""Static reading: every stored notebook, exported with `jupyter nbconvert --to html`, shows what it stores.

A reader who never runs the course sees the stored outputs (GitHub, or an HTML export). For each
notebook and solutions notebook: every stored figure is in the page as an embedded image, every
interactive widget's static view (printed above it by `widgets.explore`) is in the page as text,
every widget the page refers to has its state stored with it (so JupyterLab's HTML widget manager
can draw it), no cell stores an error, and every stored progress bar shows its final state.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("**/[0-9][0-9]_*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS_BAR = re.compile(r"(\d+)%\|[^|]*\|\s*(\d+)/(\d+)")


def outputs(notebook):
    for cell in notebook.cells:
        yield from cell.get("outputs", [])


@pytest.fixture(scope="module", params=NOTEBOOKS, ids=[str(p.relative_to(ROOT / "notebooks")) for p in NOTEBOOKS])
def exported(request):
    notebook = nbformat.read(request.param, as_version=4)
    page, _ = HTMLExporter().from_notebook_node(notebook)
    return notebook, page


def test_every_stored_figure_is_an_image_in_the_page(exported):
    notebook, page = exported
    figures = [o["data"]["image/png"] for o in outputs(notebook) if "image/png" in o.get("data", {})]
    for k, figure in enumerate(figures):
        assert f"data:image/png;base64,{figure.strip()[:200]}" in page.replace("\n", ""), f"figure {k} missing"


def test_every_widget_has_its_static_view_and_stored_state_in_the_page(exported):
    notebook, page = exported
    text = html.unescape(page)
    for cell in notebook.cells:
        if cell.cell_type != "code" or not re.search(r"^\s*(widgets\.)?explore\(", cell.source, re.M):
            continue
        printed = [o["text"] for o in cell.outputs if o.get("output_type") == "stream"]
        assert printed and printed[0].startswith("Static view ("), "explore() prints its static view first"
        for piece in printed:
            assert piece.strip() in text
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for output in outputs(notebook):
        view = output.get("data", {}).get(WIDGET_VIEW)
        if view is not None:
            assert view["model_id"] in state, "a widget whose state was not stored draws nothing outside a kernel"
            assert view["model_id"] in page


def test_no_cell_stores_an_error(exported):
    notebook, _ = exported
    errors = [o.get("ename") for o in outputs(notebook) if o.get("output_type") == "error"]
    assert errors == []


def test_stored_progress_bars_show_their_final_state(exported):
    notebook, _ = exported
    for output in outputs(notebook):
        if WIDGET_VIEW not in output.get("data", {}):
            continue
        found = PROGRESS_BAR.search("".join(output["data"].get("text/plain", "")))
        if found:
            percent, done, total = map(int, found.groups())
            assert (percent, done) == (100, total), f"a bar stored at {done}/{total}: re-run the notebook"
