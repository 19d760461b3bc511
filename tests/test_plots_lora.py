"""plots.lora_diagram: LoRA's frozen W₀ and its trainable B·A beside it, drawn to scale."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from course_lib import plots  # noqa: E402


def test_the_diagram_draws_w0_a_and_b_to_scale_and_counts_the_trainable_numbers():
    ax = plots.lora_diagram(d=128, k=64, rank=8)
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    sizes = {(round(b.get_width() / boxes[1].get_width() * 64), round(b.get_height() / boxes[1].get_width() * 64))
             for b in boxes[1:]}  # in matrix entries, taking W₀'s width as k = 64
    assert sizes == {(64, 128), (64, 8), (8, 128)}  # W₀ (d × k), A (r × k), B (d × r)
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "W₀  (128 × 64)" in texts and "A  (8 × 64)" in texts and "B  (128 × 8)" in texts
    assert "r·(d + k) = 1,536 numbers instead of d·k = 8,192" in ax.get_title()
    plt.close(ax.figure)


@pytest.mark.parametrize("kwargs, message", [
    ({"rank": 0}, "rank: expected a positive int"),
    ({"rank": 200}, r"rank: expected at most min\(d, k\) = 128, got 200"),
    ({"d": "128"}, "d: expected a positive int"),
])
def test_bad_sizes_are_refused_by_name(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        plots.lora_diagram(**kwargs)
