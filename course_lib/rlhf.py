"""RLHF from scratch: a reward model learned from human comparisons, then PPO against it.

Notebook 08 builds the three steps of the InstructGPT recipe (Ouyang et al., 2022; Stiennon et al.,
2020) on the tiny GPT: (1) people compare two answers, (2) a reward model learns to score the one
they chose higher (`pairwise_loss`), (3) the policy is optimised with PPO (Schulman et al., 2017:
`ppo_clip_loss`, `value_loss`, `gae`) while a per-token KL penalty keeps it near the frozen SFT
model (`kl_penalized_rewards`). Each piece is a small function tested on hand-computed cases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.runtime import device_of
from course_lib.validation import check_type


def _same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(check_type(name, t, Tensor, "a torch.Tensor").shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError("expected tensors of the same shape, got " + ", ".join(f"{k} {v}" for k, v in shapes.items()))


# --- step 2: the reward model --------------------------------------------------------------------

def pairwise_loss(r_chosen: Tensor, r_rejected: Tensor) -> Tensor:
    """−log σ(r_chosen − r_rejected), averaged: small when the chosen answer scores higher.

    The Bradley-Terry loss of Stiennon et al. (2020): only the difference of the two rewards matters.
    """
    _same_shape(r_chosen=r_chosen, r_rejected=r_rejected)
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def preference_accuracy(r_chosen: Tensor, r_rejected: Tensor) -> float:
    """Fraction of pairs where the reward model ranks the chosen answer above the rejected one."""
    _same_shape(r_chosen=r_chosen, r_rejected=r_rejected)
    return (r_chosen > r_rejected).float().mean().item()


def model_logits(model: nn.Module, ids: Tensor) -> Tensor:
    """Logits (batch, time, vocab) from a course GPT (tensor or tuple output) or a Hugging Face model."""
    out = model(ids)
    if isinstance(out, tuple):
        out = out[0]
    return getattr(out, "logits", out)


class ScalarHead(nn.Module):
    """A language model with a second head: one number per position, read from the hidden states.

    The hidden states are what enters the model's output layer (`head_name`, 'lm_head' in the course
    GPT and in Hugging Face models), captured with a forward pre-hook, so any such model works.
    As a reward model, the number at the last token is the score; as PPO's value head, each number
    estimates the reward still to come (with `detach=True` the value head's loss does not reach the
    policy's weights, so a poor early value estimate cannot damage the policy).
    `forward` returns (logits, scalars of shape (batch, time)).
    """

    def __init__(self, body: nn.Module, d_model: int, head_name: str = "lm_head", detach: bool = False):
        super().__init__()
        if not hasattr(body, head_name):
            children = [name for name, _ in body.named_children()]
            raise ValueError(f"head_name: the model has no submodule {head_name!r}; its children are {children}")
        self.body = body
        self.detach = detach  # True: the scalar head learns on top of the body without changing it
        self.scalar = nn.Linear(d_model, 1)
        nn.init.zeros_(self.scalar.weight)
        nn.init.zeros_(self.scalar.bias)
        self._hidden: Tensor | None = None
        getattr(body, head_name).register_forward_pre_hook(self._keep_hidden)

    def _keep_hidden(self, module, inputs):
        self._hidden = inputs[0]

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        logits = model_logits(self.body, ids)
        hidden, self._hidden = self._hidden, None
        if self.detach:
            hidden = hidden.detach()
        return logits, self.scalar(hidden).squeeze(-1)

    def score(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """The reward of each sequence: the scalar at its last real token (`lengths` counts tokens)."""
        _, scalars = self(ids)
        last = (check_type("lengths", lengths, Tensor, "a torch.Tensor").to(scalars.device) - 1).clamp(min=0)
        return scalars.gather(1, last[:, None]).squeeze(1)


# --- step 3: PPO with a KL penalty -------------------------------------------------------------

def token_logprobs(logits: Tensor, ids: Tensor) -> Tensor:
    """log p(ids[:, t+1] | ids[:, :t+1]) for every t: shape (batch, time − 1), aligned with ids[:, 1:]."""
    if logits.shape[:2] != ids.shape:
        raise ValueError(f"logits, ids: expected logits (batch, time, vocab) over ids (batch, time), "
                         f"got {tuple(logits.shape)} and {tuple(ids.shape)}")
    logp = F.log_softmax(logits[:, :-1].to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)  # bf16 up, float64 kept
    return logp.gather(2, ids[:, 1:, None]).squeeze(2)


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of `values` where `mask` is 1 (prompt and padding positions count for nothing)."""
    _same_shape(values=values, mask=mask)
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def whiten(values: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """(x − mean) / std over the masked positions: PPO's usual advantage normalisation."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * torch.rsqrt(var + eps) * mask


def kl_penalized_rewards(scores: Tensor, logp: Tensor, ref_logp: Tensor, mask: Tensor,
                         beta: float) -> tuple[Tensor, Tensor]:
    """Per-token rewards: −β·(log π − log π_ref) on every response token, plus the reward model's score
    on the last one (InstructGPT's objective). Returns (rewards, kl), both (batch, time).

    `kl` is the per-token estimate log π(a) − log π_ref(a); summed over a response it estimates
    KL(π ‖ π_ref), how far the policy has drifted from the SFT model.
    """
    _same_shape(logp=logp, ref_logp=ref_logp, mask=mask)
    if scores.shape != logp.shape[:1]:
        raise ValueError(f"scores: expected one score per sequence, shape ({logp.shape[0]},), got {tuple(scores.shape)}")
    if beta < 0:
        raise ValueError(f"beta: expected a KL coefficient >= 0, got {beta}")
    mask = mask.to(logp.dtype)
    kl = (logp - ref_logp) * mask
    rewards = -beta * kl
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = (positions * mask).argmax(dim=1)  # index of each response's last token
    rewards[torch.arange(mask.shape[0], device=mask.device), last] += scores.to(rewards.dtype)
    return rewards * mask, kl


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation over the masked (response) positions: (advantages, returns).

    δ_t = r_t + γ·V_{t+1} − V_t and A_t = δ_t + γλ·A_{t+1}; the value after a response's last token is 0.
    Returns = advantages + values, the targets of the value head.
    """
    _same_shape(rewards=rewards, values=values, mask=mask)
    if not (0 <= gamma <= 1 and 0 <= lam <= 1):
        raise ValueError(f"gamma, lam: expected values in [0, 1], got {gamma} and {lam}")
    mask = mask.to(values.dtype)
    values = values * mask
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[:, 0])
    for t in reversed(range(values.shape[1])):
        next_value = values[:, t + 1] if t + 1 < values.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


def ppo_clip_loss(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor,
                  clip: float = 0.2) -> Tensor:
    """PPO's clipped surrogate, negated to minimise: −mean(min(ρ·A, clip(ρ, 1−ε, 1+ε)·A)), ρ = π/π_old.

    The clip removes the incentive to move the probability ratio beyond 1 ± ε in one batch, so
    several epochs of minibatch updates can reuse the same samples (Schulman et al., 2017).
    """
    _same_shape(logp=logp, old_logp=old_logp, advantages=advantages, mask=mask)
    if not clip > 0:
        raise ValueError(f"clip: expected a positive epsilon such as 0.2, got {clip}")
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip, 1 + clip) * advantages
    return -masked_mean(torch.minimum(unclipped, clipped), mask)


def value_loss(values: Tensor, returns: Tensor, mask: Tensor) -> Tensor:
    """½·mean((V − R)²) over the response tokens: the value head learns to predict the return."""
    _same_shape(values=values, returns=returns, mask=mask)
    return 0.5 * masked_mean((values - returns) ** 2, mask)


# --- the library route's loss: DPO ----------------------------------------------------------------

def dpo_loss(chosen_logp: Tensor, rejected_logp: Tensor, ref_chosen_logp: Tensor, ref_rejected_logp: Tensor,
             beta: float = 0.1) -> Tensor:
    """Direct preference optimisation (Rafailov et al., 2023): the reward model's pairwise loss with the
    reward r = β·(log π(answer) − log π_ref(answer)) implied by the policy itself.

    Arguments are summed log-probabilities of whole answers, one per pair. The same KL-regularised
    objective PPO climbs step by step is solved in closed form, so no reward model and no sampling.
    """
    _same_shape(chosen_logp=chosen_logp, rejected_logp=rejected_logp, ref_chosen_logp=ref_chosen_logp,
                ref_rejected_logp=ref_rejected_logp)
    if not beta > 0:
        raise ValueError(f"beta: expected a positive number such as 0.1, got {beta}")
    return pairwise_loss(beta * (chosen_logp - ref_chosen_logp), beta * (rejected_logp - ref_rejected_logp))


# --- step 3 assembled: one PPO iteration ------------------------------------------------------------

@dataclass
class PPOConfig:
    """Settings of `ppo_step`. beta = 0 turns the KL penalty off (and lets the policy hack the reward)."""

    samples_per_prompt: int = 4
    max_new_tokens: int = 32
    temperature: float = 1.0
    beta: float = 0.1
    clip: float = 0.2
    gamma: float = 1.0
    lam: float = 0.95
    epochs: int = 2
    vf_coef: float = 0.5
    grad_clip: float = 1.0


def response_mask(ids: Tensor, prompt_lengths: Tensor, eos_id: int | None) -> Tensor:
    """1 on each generated token up to and including the first `eos_id` after the prompt, else 0.

    Shape (batch, time − 1), aligned with `token_logprobs` (position t scores token t + 1).
    """
    positions = torch.arange(1, ids.shape[1], device=ids.device)[None, :]
    generated = positions >= prompt_lengths[:, None]
    if eos_id is None:
        return generated.long()
    is_eos = (ids[:, 1:] == eos_id) & generated
    eos_before = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0  # an EOS strictly earlier
    return (generated & ~eos_before).long()


def rollout(policy: ScalarHead, prompts: list[list[int]], config: PPOConfig, eos_id: int | None,
            pad_id: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Sample `samples_per_prompt` answers per prompt with the policy's body (`.generate`).

    Returns (ids padded on the right, prompt lengths, response mask).
    """
    rows, prompt_lengths = [], []
    device = device_of(policy)
    for prompt in prompts:
        start = torch.tensor([prompt] * config.samples_per_prompt, dtype=torch.long, device=device)
        out = policy.body.generate(start, config.max_new_tokens, temperature=config.temperature,
                                   generator=generator, eos_id=eos_id)
        rows.extend(out.tolist())
        prompt_lengths += [len(prompt)] * config.samples_per_prompt
    longest = max(len(r) for r in rows)
    ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
    ids, lengths = ids.to(device), torch.tensor(prompt_lengths, device=device)
    return ids, lengths, response_mask(ids, lengths, eos_id)


def ppo_step(policy: ScalarHead, reference: nn.Module, reward_fn, prompts: list[list[int]],
             optimizer: torch.optim.Optimizer, config: PPOConfig, eos_id: int | None = None, pad_id: int = 0,
             generator: torch.Generator | None = None) -> dict[str, float]:
    """One PPO iteration: sample answers, score them, give each token its KL-penalised reward, estimate
    advantages with GAE, then `epochs` passes of the clipped objective plus the value loss.

    `reward_fn(ids, lengths)` scores each whole sequence (`lengths` counts its tokens up to its last
    answer token); `reference` is the frozen SFT model. Returns the batch's mean score, mean KL per
    answer, mean answer length and the last losses.
    """
    policy.eval()  # no dropout: the log-probabilities of the update must be those of the sampling
    ids, prompt_lengths, mask = rollout(policy, prompts, config, eos_id, pad_id, generator)
    lengths = prompt_lengths + mask.sum(dim=1)
    with torch.no_grad():
        logits, scalars = policy(ids)
        old_logp = token_logprobs(logits, ids)
        old_values = scalars[:, :-1]
        ref_logp = token_logprobs(model_logits(reference, ids), ids)
        scores = reward_fn(ids, lengths).to(old_logp.device, old_logp.dtype)
        rewards, kl = kl_penalized_rewards(scores, old_logp, ref_logp, mask, config.beta)
        advantages, returns = gae(rewards, old_values, mask, config.gamma, config.lam)
        advantages = whiten(advantages, mask)
    for _ in range(config.epochs):
        logits, scalars = policy(ids)
        logp = token_logprobs(logits, ids)
        policy_loss = ppo_clip_loss(logp, old_logp, advantages, mask, config.clip)
        v_loss = value_loss(scalars[:, :-1], returns, mask)
        loss = policy_loss + config.vf_coef * v_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], config.grad_clip)
        optimizer.step()
    return {"score": scores.mean().item(), "kl": kl.sum(dim=1).mean().item(),
            "length": mask.sum(dim=1).float().mean().item(), "policy_loss": policy_loss.item(),
            "value_loss": v_loss.item()}
