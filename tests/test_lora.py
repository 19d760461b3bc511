"""course_lib.lora: LoRA from scratch behaves like the paper says and computes what peft computes."""

import copy

import pytest
import torch
from torch import nn

from course_lib import lora, scaling


class TwoLayers(nn.Module):
    """A small stand-in for an attention block: named projections LoRA can target."""

    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(16, 16)
        self.v_proj = nn.Linear(16, 16, bias=False)
        self.out = nn.Sequential(nn.GELU(), nn.Linear(16, 5))

    def forward(self, x):
        return self.out(self.q_proj(x) + self.v_proj(x))


def small_model(seed=0):
    torch.manual_seed(seed)
    return TwoLayers()


def randomize_b(model, seed=1):
    """Pretend training happened: B is zero only at the start."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, lora.LoRALinear):
                module.lora_B.copy_(torch.randn(module.lora_B.shape, generator=generator))


def test_a_fresh_adapter_leaves_the_model_unchanged_because_b_starts_at_zero():
    model = small_model()
    x = torch.randn(3, 16)
    before = model(x)
    lora.apply_lora(model, rank=4, alpha=8, target_modules=["q_proj", "v_proj"])
    assert torch.equal(model(x), before)
    layer = model.q_proj
    assert torch.count_nonzero(layer.lora_B) == 0 and torch.count_nonzero(layer.lora_A) > 0


def test_the_update_is_b_times_a_scaled_by_alpha_over_rank():
    base = nn.Linear(6, 3)
    layer = lora.LoRALinear(base, rank=2, alpha=6)
    with torch.no_grad():
        layer.lora_A.copy_(torch.arange(12.0).reshape(2, 6) / 10)
        layer.lora_B.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
    x = torch.randn(4, 6)
    expected = base(x) + 3.0 * x @ (layer.lora_B @ layer.lora_A).T  # alpha / rank = 6 / 2
    assert layer.scaling == 3.0
    torch.testing.assert_close(layer(x), expected)


def test_only_the_adapters_train_after_apply_lora():
    model = small_model()
    total = lora.count_parameters(model)
    lora.apply_lora(model, rank=2, alpha=4, target_modules=["q_proj", "v_proj"])
    assert lora.count_parameters(model) == total + 2 * 2 * (16 + 16)
    assert lora.count_parameters(model, trainable_only=True) == 2 * 2 * (16 + 16)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["q_proj.lora_A", "q_proj.lora_B", "v_proj.lora_A", "v_proj.lora_B"]
    assert set(lora.lora_state_dict(model)) == set(trainable)


def test_merging_gives_the_same_outputs_with_plain_linear_layers():
    model = lora.apply_lora(small_model(), rank=4, alpha=8, target_modules=["q_proj", "v_proj"])
    randomize_b(model)
    x = torch.randn(5, 16)
    before = model(x)
    lora.merge_lora(model)
    assert not any(isinstance(m, lora.LoRALinear) for m in model.modules())
    assert type(model.q_proj) is nn.Linear and model.v_proj.bias is None
    torch.testing.assert_close(model(x), before, rtol=1e-5, atol=1e-6)


def test_our_lora_equals_peft_for_the_same_weights_outputs_and_gradients():
    from peft import LoraConfig, get_peft_model

    ours = lora.apply_lora(small_model(), rank=4, alpha=8, target_modules=["q_proj", "v_proj"])
    randomize_b(ours)
    theirs = get_peft_model(small_model(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    assert lora.copy_lora_to_peft(ours, theirs) == 2
    x = torch.randn(7, 16)
    out_ours, out_theirs = ours(x), theirs(x)
    torch.testing.assert_close(out_ours, out_theirs)
    out_ours.square().sum().backward()
    out_theirs.square().sum().backward()
    torch.testing.assert_close(ours.q_proj.lora_A.grad, theirs.base_model.model.q_proj.lora_A["default"].weight.grad)
    torch.testing.assert_close(ours.v_proj.lora_B.grad, theirs.base_model.model.v_proj.lora_B["default"].weight.grad)
    assert lora.count_parameters(ours, trainable_only=True) == sum(
        p.numel() for p in theirs.parameters() if p.requires_grad)


def test_a_fresh_peft_adapter_also_starts_with_b_zero_and_a_of_the_same_scale():
    from peft import LoraConfig, get_peft_model

    theirs = get_peft_model(small_model(), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj"]))
    ours = lora.apply_lora(small_model(), rank=8, alpha=16, target_modules=["q_proj"])
    peft_a = theirs.base_model.model.q_proj.lora_A["default"].weight
    assert torch.count_nonzero(theirs.base_model.model.q_proj.lora_B["default"].weight) == 0
    bound = 1 / 16 ** 0.5  # kaiming_uniform(a=√5) on fan_in 16: U(-1/√16, 1/√16), as nn.Linear
    assert peft_a.abs().max() <= bound and ours.q_proj.lora_A.abs().max() <= bound


@pytest.fixture(scope="module")
def smollm2(smollm2_pair):
    return smollm2_pair[0]


def test_lora_r8_on_smollm2_query_and_value_trains_460800_parameters_like_peft(smollm2):
    from peft import LoraConfig, get_peft_model

    ours = lora.apply_lora(copy.deepcopy(smollm2), rank=8, alpha=16, target_modules=["q_proj", "v_proj"])
    assert lora.count_parameters(ours, trainable_only=True) == 460_800
    randomize_b(ours)
    theirs = get_peft_model(copy.deepcopy(smollm2), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    assert sum(p.numel() for p in theirs.parameters() if p.requires_grad) == 460_800
    assert lora.copy_lora_to_peft(ours, theirs) == 2 * 30  # 30 layers, q and v in each
    ids = torch.tensor([[1, 504, 3458, 314, 260, 3575, 30]])
    with torch.no_grad():
        logits_ours, logits_theirs = ours(ids).logits, theirs(ids).logits
        plain = smollm2(ids).logits
    torch.testing.assert_close(logits_ours, logits_theirs, rtol=1e-4, atol=1e-4)
    assert (logits_ours - plain).abs().max() > 1e-2  # the adapters really changed something


def test_the_lora_paper_headline_numbers_for_gpt3():
    # Hu et al. 2021: GPT-3 175B, r = 4 on W_q and W_v: ~10,000x fewer trainable parameters,
    # a checkpoint of tens of MB instead of 350 GB (fp16).
    trainable = scaling.lora_parameter_count(n_layers=96, d_model=12288, rank=4, matrices_per_layer=2)
    assert 5_000 < 175e9 / trainable < 20_000
    assert scaling.model_memory_bytes(175e9, "fp16") == pytest.approx(350e9)
    assert 10e6 < scaling.model_memory_bytes(trainable, "fp16") < 100e6


@pytest.mark.parametrize("call, error, message", [
    (lambda: lora.apply_lora(small_model(), 0, 8, ["q_proj"]), ValueError, "rank: expected a positive int"),
    (lambda: lora.apply_lora(small_model(), -2, 8, ["q_proj"]), ValueError, "got -2"),
    (lambda: lora.apply_lora(small_model(), 2.5, 8, ["q_proj"]), TypeError, "rank: expected an int"),
    (lambda: lora.apply_lora(small_model(), 4, 8, ["k_proj"]), ValueError,
     r"no nn.Linear named \['k_proj'\].*\['1', 'q_proj', 'v_proj'\]"),
    (lambda: lora.apply_lora(small_model(), 4, 8, []), ValueError, "target_modules: expected at least one"),
    (lambda: lora.LoRALinear(nn.Conv1d(2, 2, 1), 4), TypeError, "base: expected a torch.nn.Linear"),
    (lambda: lora.merge_lora(small_model()), ValueError, "no LoRALinear layers"),
])
def test_bad_input_is_refused_with_the_available_choices(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("alpha, error, message", [
    ("8", TypeError, r"alpha: expected an int or float, got str \('8'\)"),
    (True, TypeError, r"alpha: expected an int or float, got bool \(True\)"),
    (0, ValueError, "alpha: expected a positive number, got 0"),
])
def test_apply_lora_names_a_bad_alpha_before_changing_the_model(alpha, error, message):
    model = small_model()
    with pytest.raises(error, match=message):
        lora.apply_lora(model, 4, alpha, ["q_proj"])
    assert all(p.requires_grad for p in model.parameters())  # nothing frozen, nothing wrapped
    assert isinstance(model.q_proj, nn.Linear)


def test_fine_tuning_bytes_full_vs_lora_counts_weights_gradients_and_adam():
    full = lora.fine_tuning_bytes(1_000, 1_000)
    assert full == {"weights": 4_000, "gradients": 4_000, "optimizer state": 8_000, "total": 16_000}
    adapters = lora.fine_tuning_bytes(1_000, 10)
    assert adapters["total"] == 4_000 + 40 + 80  # frozen weights stay; almost nothing else
    with pytest.raises(ValueError, match="n_trainable: expected at most n_params"):
        lora.fine_tuning_bytes(10, 11)
