"""course_lib.rlhf: the reward-model loss and PPO's pieces, on cases small enough to compute by hand."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import rlhf


# --- the reward model ----------------------------------------------------------------------------

def test_pairwise_loss_is_minus_log_sigmoid_of_the_reward_difference():
    chosen, rejected = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 5.0])
    by_hand = (math.log(1 + math.exp(-1)) + math.log(2) + math.log(1 + math.exp(3))) / 3
    assert rlhf.pairwise_loss(chosen, rejected).item() == pytest.approx(by_hand, rel=1e-6)
    # the same thing as a binary cross-entropy saying "chosen beats rejected" with probability 1
    reference = F.binary_cross_entropy_with_logits(chosen - rejected, torch.ones(3))
    torch.testing.assert_close(rlhf.pairwise_loss(chosen, rejected), reference)


def test_pairwise_loss_only_sees_the_difference_of_the_two_rewards():
    chosen, rejected = torch.tensor([0.3, -1.2]), torch.tensor([0.1, 0.4])
    torch.testing.assert_close(rlhf.pairwise_loss(chosen + 7, rejected + 7), rlhf.pairwise_loss(chosen, rejected))


def test_preference_accuracy_counts_pairs_ranked_the_right_way():
    assert rlhf.preference_accuracy(torch.tensor([2.0, 0.0, 1.0, 3.0]), torch.tensor([1.0, 1.0, 0.0, 3.0])) == 0.5


class ToyLM(nn.Module):
    """Embedding -> tanh -> lm_head, enough to check what ScalarHead reads."""

    def __init__(self, vocab=11, d=6):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, d)
        self.lm_head = nn.Linear(d, vocab)

    def forward(self, ids):
        return self.lm_head(torch.tanh(self.embed(ids)))


def test_scalar_head_reads_the_hidden_states_that_enter_lm_head():
    model = rlhf.ScalarHead(ToyLM(), d_model=6)
    with torch.no_grad():
        model.scalar.weight.copy_(torch.arange(6.0)[None])
        model.scalar.bias.fill_(0.5)
    ids = torch.tensor([[1, 2, 3], [4, 5, 0]])
    logits, scalars = model(ids)
    hidden = torch.tanh(model.body.embed(ids))
    torch.testing.assert_close(logits, model.body.lm_head(hidden))
    torch.testing.assert_close(scalars, hidden @ torch.arange(6.0) + 0.5)
    # the score is the scalar at each sequence's last real token
    torch.testing.assert_close(model.score(ids, torch.tensor([3, 2])), torch.stack([scalars[0, 2], scalars[1, 1]]))


def test_a_fresh_scalar_head_scores_everything_zero():
    _, scalars = rlhf.ScalarHead(ToyLM(), d_model=6)(torch.tensor([[1, 2, 3]]))
    assert torch.count_nonzero(scalars) == 0


def test_scalar_head_names_the_children_when_the_head_is_missing():
    with pytest.raises(ValueError, match=r"no submodule 'head'; its children are \['embed', 'lm_head'\]"):
        rlhf.ScalarHead(ToyLM(), d_model=6, head_name="head")


# --- PPO's pieces --------------------------------------------------------------------------------

def test_token_logprobs_picks_the_log_probability_of_each_next_token():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]]]))
    ids = torch.tensor([[0, 1, 2]])  # after position 0 comes token 1 (p=0.25), after position 1 token 2 (p=0.8)
    torch.testing.assert_close(rlhf.token_logprobs(logits, ids), torch.log(torch.tensor([[0.25, 0.8]])))


def test_kl_penalty_is_charged_per_token_and_the_score_lands_on_the_last_response_token():
    logp = torch.tensor([[-1.0, -2.0, -1.0, -3.0]])
    ref_logp = torch.tensor([[-1.0, -2.5, -2.0, -3.0]])
    mask = torch.tensor([[0, 1, 1, 0]])  # a prompt token, two response tokens, padding
    rewards, kl = rlhf.kl_penalized_rewards(torch.tensor([4.0]), logp, ref_logp, mask, beta=0.1)
    torch.testing.assert_close(kl, torch.tensor([[0.0, 0.5, 1.0, 0.0]]))
    torch.testing.assert_close(rewards, torch.tensor([[0.0, -0.05, 4.0 - 0.1, 0.0]]))


def test_without_kl_the_reward_is_the_score_alone():
    logp, ref = torch.randn(2, 3), torch.randn(2, 3)
    rewards, _ = rlhf.kl_penalized_rewards(torch.tensor([1.0, -2.0]), logp, ref, torch.ones(2, 3), beta=0.0)
    torch.testing.assert_close(rewards, torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -2.0]]))


def test_gae_with_lambda_one_is_the_return_minus_the_value():
    rewards = torch.tensor([[0.0, 1.0, 2.0, 0.0]])
    values = torch.tensor([[0.5, 1.0, 1.5, 9.0]])
    mask = torch.tensor([[1, 1, 1, 0]])  # the last position is padding: its value must not leak in
    advantages, returns = rlhf.gae(rewards, values, mask, gamma=1.0, lam=1.0)
    torch.testing.assert_close(returns, torch.tensor([[3.0, 3.0, 2.0, 0.0]]))
    torch.testing.assert_close(advantages, torch.tensor([[2.5, 2.0, 0.5, 0.0]]))


def test_gae_with_lambda_zero_is_the_one_step_td_error():
    rewards = torch.tensor([[0.0, 1.0, 2.0]])
    values = torch.tensor([[0.5, 1.0, 1.5]])
    advantages, _ = rlhf.gae(rewards, values, torch.ones(1, 3), gamma=0.9, lam=0.0)
    by_hand = [0.0 + 0.9 * 1.0 - 0.5, 1.0 + 0.9 * 1.5 - 1.0, 2.0 + 0.0 - 1.5]
    torch.testing.assert_close(advantages, torch.tensor([by_hand]))


def test_gae_mixes_the_two_with_gamma_lambda_weights():
    rewards, values = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.5, 0.25]])
    advantages, _ = rlhf.gae(rewards, values, torch.ones(1, 2), gamma=0.5, lam=0.5)
    delta1 = 2.0 - 0.25
    delta0 = 1.0 + 0.5 * 0.25 - 0.5
    torch.testing.assert_close(advantages, torch.tensor([[delta0 + 0.25 * delta1, delta1]]))


def test_ppo_clip_loss_on_hand_computed_ratios():
    # ratios 1.5, 1.5, 0.5, 0.5 against advantages +1, -1, +1, -1 with epsilon 0.2:
    # min(1.5, 1.2)=1.2; min(-1.5, -1.2)=-1.5; min(0.5, 0.8)=0.5; min(-0.5, -0.8)=-0.8
    ratio = torch.tensor([[1.5, 1.5, 0.5, 0.5]])
    old = torch.zeros(1, 4)
    advantages = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    loss = rlhf.ppo_clip_loss(ratio.log(), old, advantages, torch.ones(1, 4), clip=0.2)
    assert loss.item() == pytest.approx(-(1.2 - 1.5 + 0.5 - 0.8) / 4)


def test_ppo_clip_stops_the_gradient_once_the_ratio_has_moved_far_enough():
    logp = torch.tensor([[math.log(1.5), math.log(1.1)]], requires_grad=True)
    loss = rlhf.ppo_clip_loss(logp, torch.zeros(1, 2), torch.tensor([[1.0, 1.0]]), torch.ones(1, 2), clip=0.2)
    loss.backward()
    assert logp.grad[0, 0] == 0  # ratio 1.5 > 1.2 with a positive advantage: no push further
    assert logp.grad[0, 1] == pytest.approx(-1.1 / 2)  # d(-ratio·A/2)/dlogp = -ratio/2 inside the clip range


def test_at_ratio_one_the_ppo_loss_is_minus_the_mean_advantage():
    advantages = torch.tensor([[0.3, -0.1, 0.7]])
    mask = torch.tensor([[1, 1, 0]])
    logp = torch.randn(1, 3)
    assert rlhf.ppo_clip_loss(logp, logp, advantages, mask).item() == pytest.approx(-0.1)


def test_value_loss_is_half_the_masked_squared_error():
    values, returns = torch.tensor([[1.0, 2.0, 100.0]]), torch.tensor([[0.0, 4.0, 0.0]])
    assert rlhf.value_loss(values, returns, torch.tensor([[1, 1, 0]])).item() == pytest.approx(0.5 * (1 + 4) / 2)


def test_whiten_gives_zero_mean_unit_variance_on_the_masked_positions():
    values, mask = torch.tensor([[1.0, 2.0, 3.0, 50.0]]), torch.tensor([[1, 1, 1, 0]])
    white = rlhf.whiten(values, mask)
    assert rlhf.masked_mean(white, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert rlhf.masked_mean(white ** 2, mask).item() == pytest.approx(1.0, abs=1e-5)
    assert white[0, 3] == 0


@pytest.mark.parametrize("call, error, message", [
    (lambda: rlhf.pairwise_loss(torch.zeros(3), torch.zeros(2)), ValueError, r"same shape.*\(3,\).*\(2,\)"),
    (lambda: rlhf.pairwise_loss([1.0], torch.zeros(1)), TypeError, "r_chosen: expected a torch.Tensor"),
    (lambda: rlhf.ppo_clip_loss(*[torch.zeros(1, 2)] * 4, clip=0), ValueError, "clip: expected a positive"),
    (lambda: rlhf.kl_penalized_rewards(torch.zeros(1), *[torch.zeros(1, 2)] * 3, beta=-1), ValueError, "beta"),
    (lambda: rlhf.kl_penalized_rewards(torch.zeros(2), *[torch.zeros(1, 2)] * 3, beta=0.1), ValueError, "scores"),
    (lambda: rlhf.gae(*[torch.zeros(1, 2)] * 3, gamma=1.5), ValueError, "gamma, lam"),
    (lambda: rlhf.token_logprobs(torch.zeros(1, 3, 5), torch.zeros(1, 4, dtype=torch.long)), ValueError, "logits, ids"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_dpo_loss_is_the_pairwise_loss_on_implicit_rewards_and_log2_at_the_start():
    chosen, rejected = torch.tensor([-10.0, -4.0]), torch.tensor([-12.0, -3.0])
    ref_chosen, ref_rejected = torch.tensor([-11.0, -4.0]), torch.tensor([-11.0, -4.0])
    # implicit rewards 0.1*(1, 0) and 0.1*(-1, 1): margins 0.2 and -0.1
    by_hand = (math.log(1 + math.exp(-0.2)) + math.log(1 + math.exp(0.1))) / 2
    assert rlhf.dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.1).item() == pytest.approx(by_hand, rel=1e-6)
    # before any update the policy is the reference: every margin is 0 and the loss is log 2 (TRL's first logged loss)
    assert rlhf.dpo_loss(chosen, rejected, chosen, rejected).item() == pytest.approx(math.log(2))


# --- the assembled PPO iteration -------------------------------------------------------------------

def test_response_mask_covers_the_answer_up_to_and_including_the_first_eos():
    ids = torch.tensor([[5, 6, 1, 2, 9, 3, 9],    # prompt of 2, answer 1 2 <eos=9>, then junk
                        [5, 6, 7, 1, 1, 1, 1]])   # prompt of 3, answer never ends
    mask = rlhf.response_mask(ids, torch.tensor([2, 3]), eos_id=9)
    # position t scores token t+1: tokens 1..6 of row 0 are 6 | 1 2 9 | 3 9
    torch.testing.assert_close(mask, torch.tensor([[0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1]]))


def test_ppo_raises_the_reward_of_a_toy_policy_and_kl_keeps_it_closer_to_the_reference():
    import copy

    from course_lib.model import GPT, GPTConfig

    def reward_fn(ids, lengths):  # "people like the token 3": the fraction of answer tokens that are 3
        answer = ids[:, 2:]
        return (answer == 3).float().mean(dim=1)

    def run(beta):
        torch.manual_seed(0)
        sft = GPT(GPTConfig(vocab_size=8, context_length=16, d_model=16, n_layers=1, n_heads=2))
        policy = rlhf.ScalarHead(copy.deepcopy(sft), d_model=16)
        optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
        config = rlhf.PPOConfig(samples_per_prompt=8, max_new_tokens=6, beta=beta, epochs=2)
        generator = torch.Generator().manual_seed(0)
        stats = [rlhf.ppo_step(policy, sft, reward_fn, [[1, 2], [2, 1]], optimizer, config, generator=generator)
                 for _ in range(30)]
        return stats

    free, kept = run(beta=0.0), run(beta=1.0)
    first, last = sum(s["score"] for s in free[:5]) / 5, sum(s["score"] for s in free[-5:]) / 5
    assert last > first + 0.3, (first, last)
    assert free[-1]["kl"] > kept[-1]["kl"]  # the penalty holds the policy nearer the SFT model
    assert all(s["length"] == 6 for s in free)  # no eos given: every answer uses all its tokens
