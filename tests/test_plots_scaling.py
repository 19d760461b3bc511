"""The two pictures notebook 11 draws: what each device holds, and what fills a GPU's memory."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_lib import distributed, plots, scaling  # noqa: E402


def test_parallelism_splits_draws_one_box_per_device_and_part():
    ax = plots.parallelism_splits(distributed.SPLITS, n_devices=2)
    outlines = [p for p in ax.patches if not p.get_fill()]
    assert len(outlines) == len(distributed.SPLITS) * len(distributed.PARTS) * 2
    texts = {t.get_text() for t in ax.texts}
    assert {"by layer", "by batch", "full copy each", *distributed.PARTS} <= texts
    plt.close("all")


def test_memory_bars_stack_the_parts_and_label_the_total():
    settings = {"serve": scaling.inference_memory_bytes(scaling.LLAMA2_7B),
                "LoRA": scaling.finetuning_memory_bytes(scaling.LLAMA2_7B, "lora")}
    ax = plots.memory_bars(settings, limit=scaling.A10G_BYTES, limit_label="A10G")
    totals = [t.get_text() for t in ax.texts if t.get_text().endswith("GB")]
    assert totals == [f" {sum(v.values()) / 1e9:,.1f} GB" for v in settings.values()]
    plt.close("all")


@pytest.mark.parametrize("call, message", [
    (lambda: plots.parallelism_splits({}), "splits: expected at least one technique"),
    (lambda: plots.parallelism_splits({"a": {"x": "all"}, "b": {"y": "all"}}), "every technique must list the parts"),
    (lambda: plots.memory_bars({}), "breakdowns: expected at least one"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
