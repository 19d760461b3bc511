"""course_lib.scaling lands near the published figures it imitates."""

import pytest

from course_lib import scaling


def test_gpt3_training_compute_matches_the_paper():
    # Brown et al. 2020: 175B parameters, 300B training tokens, 3,640 petaflop/s-days ≈ 3.14e23 FLOP.
    flops = scaling.training_flops(175e9, 300e9)
    assert flops == pytest.approx(3.15e23, rel=0.01)
    assert scaling.petaflop_s_days(flops) == pytest.approx(3640, rel=0.01)


def test_training_days_divides_flops_by_useful_throughput():
    # 8.64e19 FLOP on one device of 1e15 FLOP/s at 100 % utilisation is exactly one day.
    assert scaling.training_days(8.64e19, n_gpus=1, peak_flops=1e15, mfu=1.0) == pytest.approx(1.0)
    assert scaling.training_days(8.64e19, n_gpus=2, peak_flops=1e15, mfu=0.5) == pytest.approx(1.0)
    assert scaling.gpu_hours(8.64e19, peak_flops=1e15, mfu=1.0) == pytest.approx(24.0)


def test_a_7b_model_needs_about_14_gb_in_bf16():
    assert scaling.model_memory_bytes(7e9, "bfloat16") == pytest.approx(14e9)
    assert scaling.model_memory_bytes(7e9, "float32") == pytest.approx(28e9)
    assert scaling.model_memory_bytes(7e9, "int4") == pytest.approx(3.5e9)


def test_lora_on_gpt3_query_and_value_is_about_ten_thousand_times_smaller():
    # Hu et al. 2021: r = 4 on W_q and W_v of GPT-3 (96 layers, d_model 12,288): ~18.9M trainable.
    trainable = scaling.lora_parameter_count(n_layers=96, d_model=12288, rank=4, matrices_per_layer=2)
    assert trainable == 96 * 2 * 4 * (12288 + 12288) == 18_874_368
    assert 175e9 / trainable == pytest.approx(9272, rel=0.01)
    assert scaling.model_memory_bytes(trainable, "fp16") / 1e6 == pytest.approx(37.7, rel=0.01)


@pytest.mark.parametrize("call, message", [
    (lambda: scaling.training_flops(0, 1), "n_params: expected a positive number, got 0"),
    (lambda: scaling.training_flops("7B", 1), "n_params: expected a number, got str"),
    (lambda: scaling.training_days(1e20, 8, 1e15, mfu=1.5), r"mfu: expected a fraction in \(0, 1\], got 1.5"),
    (lambda: scaling.model_memory_bytes(1e9, "int3"), "dtype: expected one of"),
    (lambda: scaling.lora_parameter_count(96, 12288, 0), "rank: expected a positive int, got 0"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
