"""The transformer diagram draws the parts it names and refuses parts it does not know."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_lib import plots  # noqa: E402


def texts(ax) -> set[str]:
    return {t.get_text() for t in ax.texts}


def test_the_full_figure_has_an_encoder_on_the_left_and_a_decoder_on_the_right():
    ax = plots.transformer_diagram("cross attention")
    shown = texts(ax)
    assert {"Multi-head attention", "Masked multi-head attention", "Multi-head cross-attention",
            "Feed forward", "Add & Norm", "Linear", "Softmax", "encoder", "decoder"} <= shown
    x_of = {t.get_text(): t.get_position()[0] for t in ax.texts}
    assert x_of["Multi-head attention"] < x_of["Masked multi-head attention"]
    assert "cross attention" in ax.get_title()
    plt.close("all")


def test_the_decoder_only_figure_has_no_encoder_and_no_cross_attention():
    shown = texts(plots.transformer_diagram(decoder_only=True))
    assert "Masked multi-head attention" in shown and "GPT block" in shown
    assert "Multi-head cross-attention" not in shown and "encoder" not in shown
    plt.close("all")


def test_an_unknown_part_is_refused_with_the_list_of_parts():
    with pytest.raises(ValueError, match=r"highlight: unknown part\(s\) \['mlp'\]; expected some of"):
        plots.transformer_diagram("mlp")
