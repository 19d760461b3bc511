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


def test_the_ppo_loop_draws_the_five_stages_in_order_and_closes_the_loop():
    ax = plots.ppo_loop(highlight="advantage")
    titles = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
    assert titles == ["policy π", "samples", "reward", "advantage", "clipped update"]
    arrows = [p for p in ax.patches if type(p).__name__ == "FancyArrowPatch"]
    assert len(arrows) == 5  # four forward, one back to the policy
    boxes = [p for p in ax.patches if type(p).__name__ == "FancyBboxPatch"]
    highlighted = [i for i, box in enumerate(boxes) if box.get_facecolor() != boxes[0].get_facecolor()]
    assert highlighted == [3]
    plt.close(ax.figure)


def test_an_unknown_stage_to_highlight_is_refused():
    with pytest.raises(ValueError, match="highlight: expected one of"):
        plots.ppo_loop(highlight="value")
