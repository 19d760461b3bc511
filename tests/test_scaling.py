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


# --- notebook 08's table: our calculator beside the published figures ---------------------------

def test_six_n_d_lands_within_a_few_percent_of_every_published_flop_count():
    # GPT-3 (3.14e23), PaLM (2.56e24) and the GPT-4 estimate (2.15e25) all publish N, D and compute.
    checked = [m for m in scaling.PUBLISHED_MODELS if m.n_tokens and m.published_flops]
    assert {m.name for m in checked} == {"GPT-3", "PaLM", "GPT-4"}
    for model in checked:
        assert model.flops == pytest.approx(model.published_flops, rel=0.03), model.name


def test_llama2_gpu_hours_imply_about_forty_percent_mfu_on_a100s():
    # Touvron et al. 2023 publish A100 GPU-hours, not FLOPs: 6ND / (hours × 312 TFLOP/s) ≈ 0.4.
    for name in ("LLaMA 2 7B", "LLaMA 2 13B", "LLaMA 2 70B"):
        model = next(m for m in scaling.PUBLISHED_MODELS if m.name == name)
        mfu = scaling.implied_mfu(model.flops, model.published_gpu_hours, scaling.PEAK_FLOPS["A100"])
        assert 0.35 < mfu < 0.45, (name, mfu)


def test_the_gpt4_cluster_estimate_brackets_the_reported_compute():
    # ~25,000 A100s for 90-100 days at 32-36 % MFU; the reported estimate is ≈ 2.15e25 FLOP.
    low = scaling.cluster_flops(25_000, scaling.PEAK_FLOPS["A100"], mfu=0.32, days=90)
    high = scaling.cluster_flops(25_000, scaling.PEAK_FLOPS["A100"], mfu=0.36, days=100)
    assert low < 2.15e25 < high
    assert low == pytest.approx(25_000 * 312e12 * 0.32 * 90 * 86_400)


def test_cluster_flops_is_training_days_run_backwards():
    flops = scaling.cluster_flops(1024, 312e12, mfu=0.4, days=21)
    assert scaling.training_days(flops, 1024, 312e12, mfu=0.4) == pytest.approx(21)


def test_training_cost_is_gpu_hours_times_price():
    # One PF/s-day on a 1e15 FLOP/s device at 100 % is 24 GPU-hours: at $2/hour, $48.
    assert scaling.training_cost(8.64e19, peak_flops=1e15, price_per_gpu_hour=2.0, mfu=1.0) == pytest.approx(48.0)


def test_implied_tokens_inverts_six_n_d():
    assert scaling.implied_tokens(scaling.training_flops(1e9, 2e10), 1e9) == pytest.approx(2e10)


def test_models_without_published_tokens_fall_back_on_the_published_compute():
    gpt1 = next(m for m in scaling.PUBLISHED_MODELS if m.name == "GPT-1")
    assert gpt1.n_tokens is None and gpt1.flops == gpt1.published_flops == 1.7e19
    with pytest.raises(ValueError, match="neither the tokens nor the compute"):
        _ = scaling.PublishedModel("mystery", 2024, 1e9, None).flops


@pytest.mark.parametrize("call, message", [
    (lambda: scaling.cluster_flops(0, 312e12, 0.4, 10), "n_gpus: expected a positive number, got 0"),
    (lambda: scaling.cluster_flops(8, 312e12, 0.0, 10), r"mfu: expected a fraction in \(0, 1\], got 0.0"),
    (lambda: scaling.training_cost(1e20, 312e12, -1.0), "price_per_gpu_hour: expected a positive number"),
    (lambda: scaling.implied_mfu(1e20, 0, 312e12), "gpu_hours_used: expected a positive number, got 0"),
])
def test_bad_input_to_the_table_helpers_is_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# --- many GPUs: ZeRO, tensor and pipeline parallelism, training time ------------------------------------

@pytest.mark.parametrize("strategy, gigabytes", [("dp", 120.0), ("zero1", 31.4), ("zero2", 16.6), ("zero3", 1.9)])
def test_zero_paper_figure_1_a_7_5b_model_on_64_gpus(strategy, gigabytes):
    """Rajbhandari et al. (2020), Figure 1: Ψ = 7.5 B, K = 12, N_d = 64."""
    parts = scaling.model_state_bytes_per_gpu(7.5e9, 64, strategy, k=12)
    assert sum(parts.values()) / 1e9 == pytest.approx(gigabytes, abs=0.05)


def test_tensor_and_pipeline_parallelism_divide_the_model_before_zero_shards_it():
    alone = scaling.model_state_bytes_per_gpu(8e9, 8, "zero1")
    split = scaling.model_state_bytes_per_gpu(8e9, 8, "zero1", tp=2, pp=2)  # 2 data-parallel copies left
    assert split["parameters"] == alone["parameters"] / 4
    assert split["optimizer states"] == 12 * 8e9 / 4 / 2
    with pytest.raises(ValueError, match="n_gpus: expected a multiple of tp x pp = 4, got 6"):
        scaling.model_state_bytes_per_gpu(8e9, 6, tp=2, pp=2)
    with pytest.raises(ValueError, match="strategy"):
        scaling.model_state_bytes_per_gpu(8e9, 8, "zero4")


def test_recomputation_keeps_one_vector_per_token_and_layer_instead_of_34_bytes_per_width():
    shape = scaling.LLAMA2_7B
    full = scaling.layer_activation_bytes(shape, 2048)
    assert full == 2048 * 4096 * 34
    assert scaling.layer_activation_bytes(shape, 2048, recompute=True) == full * 2 / 34
    assert scaling.layer_activation_bytes(shape, 2048, tp=4) == full / 4


@pytest.mark.parametrize("n_params, tokens, gpus, flops, days", [
    (175e9, 300e9, 1024, 140e12, 34),    # GPT-3 on 1,024 A100s at 140 TFLOP/s each (Narayanan et al., 2021)
    (1.008e12, 450e9, 3072, 163e12, 84),  # their 1 T model on 3,072 A100s at 163 TFLOP/s each
])
def test_eight_n_d_reproduces_the_published_large_cluster_estimates(n_params, tokens, gpus, flops, days):
    assert scaling.training_days_with_recompute(n_params, tokens, gpus, flops) == pytest.approx(days, abs=0.5)
    without = scaling.training_days_with_recompute(n_params, tokens, gpus, flops, recompute=False)
    assert without == pytest.approx(days * 6 / 8, abs=0.5)


def test_the_seed_models_have_their_published_sizes():
    assert scaling.GPT3_175B.n_params == pytest.approx(175e9, rel=0.01)
    assert scaling.LLAMA2_70B.n_params == pytest.approx(69e9, rel=0.01)
    assert scaling.LLAMA2_7B.n_params == pytest.approx(6.74e9, rel=0.01)


def test_gpus_needed_grows_with_the_task_and_shrinks_with_the_gpu():
    seven_b = scaling.LLAMA2_7B
    serve = scaling.gpus_needed(seven_b, "A10G", "serve")
    train = scaling.gpus_needed(seven_b, "A10G", "train")
    assert serve == 1 < train  # 13.5 GB of bf16 weights fit one A10G; 16 bytes a parameter do not
    assert scaling.gpus_needed(seven_b, "A100 80GB", "train") < train
    assert scaling.gpus_needed(scaling.GPT3_175B, "A10G", "train", max_gpus=8) is None
    with pytest.raises(ValueError, match="gpu"):
        scaling.gpus_needed(seven_b, "T4", "serve")
