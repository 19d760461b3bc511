"""plots.course_map: the README's course map, drawn from the outline; the stored picture is what the code draws."""

import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from course_lib import outline, plots  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "docs" / "course_map.png"


def test_the_map_shows_every_notebook_in_order_with_its_title():
    ax = plots.course_map()
    texts = [t.get_text() for t in ax.texts]
    numbers = [t for t in texts if t.isdigit()]
    assert numbers == [f"{n.number:02d}" for n in outline.NOTEBOOKS]
    for notebook in outline.NOTEBOOKS:
        assert any(t.replace("\n", " ") == notebook.title for t in texts), notebook.title
    arrows = [p for p in ax.patches if type(p).__name__ == "FancyArrowPatch"]
    assert len(arrows) == len(outline.NOTEBOOKS) - 1
    plt.close(ax.figure)


def test_every_notebook_is_in_exactly_one_part():
    numbers = [n for _, part in outline.PARTS for n in part]
    assert sorted(numbers) == [n.number for n in outline.NOTEBOOKS]


def test_the_stored_map_is_what_the_code_draws(tmp_path):
    fresh = tmp_path / "course_map.png"
    subprocess.run([sys.executable, "-m", "course_lib.plots", str(fresh)], check=True)
    stored, drawn = mpimg.imread(STORED), mpimg.imread(fresh)
    assert stored.shape == drawn.shape, "redraw it: python -m course_lib.plots docs/course_map.png"
    assert np.abs(stored - drawn).max() < 0.05, "redraw it: python -m course_lib.plots docs/course_map.png"


def test_the_command_says_how_to_use_it():
    done = subprocess.run([sys.executable, "-m", "course_lib.plots"], capture_output=True, text=True)
    assert done.returncode != 0 and "usage: python -m course_lib.plots PATH.png" in done.stderr
