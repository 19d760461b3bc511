"""plots.attention_head_diagram draws every matrix of a head with its shape, and refuses bad sizes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_lib.plots import attention_head_diagram  # noqa: E402


def test_the_diagram_labels_each_matrix_with_its_shape():
    ax = attention_head_diagram(n_queries=6, n_keys=5, d_model=927, d_head=16)
    texts = [t.get_text() for t in ax.texts]
    for label, shape in [("W_q", "927 × 16"), ("Q", "6 × 16"), ("K", "5 × 16"), ("scores", "6 × 5"),
                         ("weights", "6 × 5"), ("output", "6 × 16")]:
        assert label in texts and shape in texts, f"{label} ({shape}) is missing from {texts}"
    plt.close(ax.figure)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_the_diagram_refuses_a_size_that_is_not_a_positive_int(bad):
    with pytest.raises(ValueError, match="d_head: expected a positive int"):
        attention_head_diagram(d_head=bad)
