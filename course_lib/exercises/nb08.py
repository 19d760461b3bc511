"""Checkers for notebook 08's exercises: training compute, LoRA's parameter count, the reward model's
loss and PPO's clipped objective. Each takes the learner's function and says what is off."""

from __future__ import annotations

import math
from collections.abc import Callable

from course_lib.exercises import (
    Mismatch,
    Result,
    call,
    check,
    expect,
    expect_close,
    what_it_is,
)


def _number(got, what: str) -> float:
    """A real number (int, float or a one-element tensor), or a failed result naming what came instead."""
    if isinstance(got, bool) or got is None or isinstance(got, str):
        raise Mismatch(f"{what} returned {what_it_is(got)}: return a number.")
    try:
        return float(got)
    except (TypeError, ValueError):
        raise Mismatch(f"{what} returned a {type(got).__name__}: return a single number.") from None


def exercise_1(training_days: Callable[[float, float, int, float, float], float]) -> Result:
    """`training_days(n_params, n_tokens, n_gpus, peak_flops, mfu)`: days of training with 6·N·D FLOPs."""

    def attempt():
        what = "training_days(175e9, 300e9, 1024, 312e12, 0.4)"
        days = _number(call(what, training_days, 175e9, 300e9, 1024, 312e12, 0.4), what)
        expected = 6 * 175e9 * 300e9 / (1024 * 312e12 * 0.4) / 86_400
        def near(value: float) -> bool:
            return abs(days - value) < 1e-6 * abs(value)

        expect(not near(expected * 86_400), "that is in seconds: divide by 86,400 seconds per day.")
        expect(not near(expected / 6), "you counted 1 FLOP per parameter per token; training costs about 6 "
                                       "(2 forward, 4 backward).")
        expect(not near(expected * 0.16), "the useful throughput is peak_flops × mfu: divide the FLOPs by it, "
                                          "do not multiply by mfu.")
        expect_close(days, expected, "GPT-3 (175B, 300B tokens) on 1,024 A100s at 40 % MFU, in days",
                     tol=1e-6 * expected)
        what = "training_days(7e9, 2e12, 2048, 312e12, 0.4)"
        expect_close(_number(call(what, training_days, 7e9, 2e12, 2048, 312e12, 0.4), what),
                     6 * 7e9 * 2e12 / (2048 * 312e12 * 0.4) / 86_400, "LLaMA 2 7B on 2,048 A100s, in days", tol=1e-4)

    return check("1", attempt, f"About {6 * 175e9 * 300e9 / (1024 * 312e12 * 0.4) / 86_400:.0f} days for GPT-3 "
                               "on 1,024 A100s at 40 % MFU, the same as scaling.training_days.")


def exercise_2(lora_trainable: Callable[[int, int, int], int]) -> Result:
    """`lora_trainable(d_in, d_out, rank)`: trainable parameters LoRA adds to one d_out×d_in matrix."""

    def attempt():
        def count(d_in, d_out, rank):
            what = f"lora_trainable({d_in}, {d_out}, {rank})"
            return _number(call(what, lora_trainable, d_in, d_out, rank), what)

        got = count(576, 576, 8)
        if got == 576 * 576:
            expect(False, "that is the frozen matrix W₀ itself; LoRA trains A (r×d_in) and B (d_out×r) only.")
        if got == 576 * 8:
            expect(False, "you counted only one of the two matrices: A is r×d_in and B is d_out×r.")
        expect(got == 8 * (576 + 576), f"d_in=d_out=576 (SmolLM2's q_proj), r=8: expected {8 * 1152}, got {got}.")
        got = count(576, 192, 8)
        expect(got == 8 * (576 + 192), f"d_in=576, d_out=192 (SmolLM2's v_proj), r=8: expected {8 * 768}, got {got}.")
        total = 30 * (count(576, 576, 8) + count(576, 192, 8))
        expect(total == 460_800, f"30 layers × (q_proj + v_proj) should give peft's 460,800, got {total}.")

    return check("2", attempt, "30 layers × (9,216 + 6,144) = 460,800 trainable parameters, as peft reports "
                               "for SmolLM2 (0.34 % of 135M).")


def exercise_3(reward_loss: Callable) -> Result:
    """`reward_loss(r_chosen, r_rejected)`: the mean of −log σ(r_chosen − r_rejected) over tensors."""
    import torch

    def attempt():
        chosen, rejected = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([1.0, 0.0, 1.0])
        what = "reward_loss(tensor([2., 0., -1.]), tensor([1., 0., 1.]))"
        got = call(what, reward_loss, chosen, rejected)
        expect(isinstance(got, torch.Tensor), f"{what} returned {what_it_is(got)}: return a torch tensor "
                                              "(so it can be back-propagated).")
        expect(got.dim() == 0, f"return the mean over pairs, a single number; got shape {tuple(got.shape)}.")
        expected = sum(math.log1p(math.exp(-(c - r))) for c, r in ((2, 1), (0, 0), (-1, 1))) / 3
        flipped = sum(math.log1p(math.exp(c - r)) for c, r in ((2, 1), (0, 0), (-1, 1))) / 3
        if abs(float(got) - flipped) < 1e-5:
            expect(False, "the sign is flipped: the loss must be small when r_chosen is larger than r_rejected.")
        expect_close(float(got), expected, "reward_loss([2, 0, -1], [1, 0, 1])", tol=1e-5)
        what = "reward_loss(tensor([0.]), tensor([1000.]))"
        wrong_way = call(what, reward_loss, torch.tensor([0.0]), torch.tensor([1000.0]))
        expect(isinstance(wrong_way, torch.Tensor), f"{what} returned {what_it_is(wrong_way)}: return a torch tensor.")
        expect(bool(torch.isfinite(wrong_way).all()) and abs(float(wrong_way) - 1000.0) < 1e-3,
               "when the rejected answer scores 1000 higher the loss must be 1000, not inf or nan: "
               "log(sigmoid(x)) underflows to log 0; use torch.nn.functional.logsigmoid.")

    return check("3", attempt, "This is the Bradley-Terry loss of Stiennon et al. (2020) and "
                               "course_lib.rlhf.pairwise_loss.")


def exercise_4(ppo_objective: Callable[[float, float, float], float]) -> Result:
    """`ppo_objective(ratio, advantage, epsilon)`: min(ratio·A, clip(ratio, 1−ε, 1+ε)·A) for one token."""

    def attempt():
        cases = [(1.5, 1.0, 0.2, 1.2), (1.5, -1.0, 0.2, -1.5), (0.5, 1.0, 0.2, 0.5), (0.5, -1.0, 0.2, -0.8),
                 (1.1, 2.0, 0.2, 2.2), (0.7, 3.0, 0.1, 2.1)]
        for ratio, advantage, eps, expected in cases:
            what = f"ppo_objective(ratio={ratio}, advantage={advantage}, epsilon={eps})"
            got = _number(call(what, ppo_objective, ratio, advantage, eps), what)
            if abs(got - min(max(ratio, 1 - eps), 1 + eps) * advantage) < 1e-9 and abs(got - expected) > 1e-9:
                expect(False, f"ratio={ratio}, A={advantage}: the clipped term alone is not enough; "
                              "take the min with the unclipped ratio·A.")
            if abs(got - max(ratio * advantage, min(max(ratio, 1 - eps), 1 + eps) * advantage)) < 1e-9 \
                    and abs(got - expected) > 1e-9:
                expect(False, f"ratio={ratio}, A={advantage}: you took the max; PPO takes the min (a pessimistic bound).")
            expect_close(got, expected, f"ppo_objective(ratio={ratio}, advantage={advantage}, epsilon={eps})", tol=1e-9)

    return check("4", attempt, "course_lib.rlhf.ppo_clip_loss is minus the mean of this over response tokens.")
