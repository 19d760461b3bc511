"""plots.rlhf_diagram: the three steps of InstructGPT's recipe, drawn by code."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_lib import plots  # noqa: E402


def test_the_rlhf_diagram_draws_the_three_steps_in_order():
    ax = plots.rlhf_diagram(highlight=3)
    steps = [t.get_text() for t in ax.texts if t.get_text()[:2] in ("1.", "2.", "3.")]
    assert steps == ["1. Collect human comparisons", "2. Train a reward model", "3. Optimise the policy with PPO"]
    plt.close(ax.figure)


def test_an_unknown_step_to_highlight_is_refused():
    with pytest.raises(ValueError, match="highlight: expected 1, 2, 3 or None, got 4"):
        plots.rlhf_diagram(highlight=4)
