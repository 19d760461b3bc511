"""Every model path of course_lib runs on every device this machine has: the CPU always, CUDA and
Apple's MPS where present. Each test builds its model on the CPU (seeded), moves it to the device,
runs the path there, and checks the result against the same path on the CPU.

On a CPU-only machine these tests run once, on the CPU; on the course's GPU instance also on CUDA.
"""

import copy

import pytest
import torch

from course_lib import instruct, lora, quantization, rlhf, runtime
from course_lib.generation import sample_next
from course_lib.llama import Llama, LlamaConfig
from course_lib.model import GPT, GPTConfig
from course_lib.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from course_lib.train import random_windows, train


def available_devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


DEVICES = available_devices()
on_every_device = pytest.mark.parametrize("device", DEVICES)
# float32 on a GPU (TF32 matmuls, other reduction orders) is close to the CPU, not equal
TOLERANCE = dict(atol=2e-3, rtol=2e-3)


def tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=32, context_length=16, d_model=16, n_layers=2, n_heads=2))


def tiny_llama() -> Llama:
    torch.manual_seed(0)
    return Llama(LlamaConfig(vocab_size=32, d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=32,
                             max_seq_len=24))


def ids_on(device: str, shape=(2, 6), high: int = 32) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(1)).to(device)


@on_every_device
@pytest.mark.parametrize("make", [tiny_gpt, tiny_llama], ids=["gpt", "llama"])
def test_forward_gives_the_cpu_logits_on_the_device(device, make):
    model = make()
    expected = model(ids_on("cpu"))
    got = model.to(device)(ids_on(device))
    assert got.device.type == device
    torch.testing.assert_close(got.cpu(), expected, **TOLERANCE)


@on_every_device
@pytest.mark.parametrize("make", [tiny_gpt, tiny_llama], ids=["gpt", "llama"])
@pytest.mark.parametrize("use_cache", [True, False], ids=["kv-cache", "recompute"])
def test_greedy_generation_stays_on_the_device_and_matches_the_cpu(device, make, use_cache):
    model = make()
    prompt = ids_on("cpu", (2, 3))
    expected = model.generate(prompt, 8, use_cache=use_cache)
    got = model.to(device).generate(prompt.to(device), 8, use_cache=use_cache)
    assert got.device.type == device
    assert torch.equal(got.cpu(), expected)


@on_every_device
@pytest.mark.parametrize("make", [tiny_gpt, tiny_llama], ids=["gpt", "llama"])
def test_sampling_with_a_cpu_generator_works_on_the_device(device, make):
    """A CPU generator (as the notebooks make them) must not crash on a GPU: the draw happens on the CPU."""
    model = make().to(device)
    prompt = ids_on(device, (1, 3))
    a = model.generate(prompt, 6, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(3))
    b = model.generate(prompt, 6, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(3))
    assert a.device.type == device and torch.equal(a, b)
    on_device = torch.Generator(device=device).manual_seed(3)
    assert model.generate(prompt, 6, temperature=1.0, generator=on_device).device.type == device


@on_every_device
def test_sample_next_draws_where_the_generator_lives(device):
    logits = torch.tensor([[0.0, 10.0, 0.0, 9.0]], device=device)
    draws = {sample_next(logits, 1.0, top_k=2, generator=torch.Generator().manual_seed(i)).item() for i in range(30)}
    assert draws == {1, 3}


@on_every_device
def test_a_gpt_training_step_runs_on_the_device_and_matches_the_cpu(device):
    """`train.train` moves each CPU batch to the model's device."""
    tokens = torch.arange(200) % 32

    def run(model):
        generator = torch.Generator().manual_seed(0)
        history = train(model, lambda: random_windows(tokens, 4, 8, generator), steps=3, lr=1e-2, progress=False)
        return history.losses

    expected = run(tiny_gpt())
    got = run(tiny_gpt().to(device))
    assert got == pytest.approx(expected, abs=2e-3)


@on_every_device
def test_the_seq2seq_translator_trains_and_translates_on_the_device(device):
    torch.manual_seed(0)
    model = Seq2SeqTransformer(Seq2SeqConfig(src_vocab_size=20, tgt_vocab_size=20, d_model=16, n_heads=2,
                                             n_layers=1, context_length=12)).to(device)
    src, tgt = ids_on("cpu", (3, 5), 20), ids_on("cpu", (3, 6), 20)
    history = train(model, lambda: (src, tgt[:, :-1], tgt[:, 1:]), steps=2, progress=False)
    assert len(history.losses) == 2
    out = model.translate(src.to(device), bos_id=1, eos_id=2, max_len=6)
    assert len(out) == 3 and all(isinstance(token, int) for row in out for token in row)


@on_every_device
def test_lora_trains_only_its_matrices_on_the_device(device):
    model = lora.apply_lora(tiny_gpt(), rank=4, alpha=8, target_modules=["q_proj", "v_proj"]).to(device)
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    ids = ids_on(device, (2, 9))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        loss = model.loss(ids[:, :-1], ids[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(p, frozen[name]) for name, p in model.named_parameters() if name in frozen)
    merged = lora.merge_lora(copy.deepcopy(model))
    torch.testing.assert_close(merged(ids), model(ids), **TOLERANCE)


class CharTokenizer:
    """A stand-in tokenizer for the SFT path: one id per character (ids below 96)."""

    def encode(self, text: str) -> list[int]:
        return [min(ord(c), 127) % 96 for c in text]

    def decode(self, ids) -> str:
        return "".join(chr(32 + i % 64) for i in ids)


@on_every_device
def test_an_sft_step_and_instruct_generation_run_on_the_device(device):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=96, context_length=64, d_model=16, n_layers=1, n_heads=2)).to(device)
    tokenizer = CharTokenizer()
    batch = instruct.sft_batch(tokenizer, [("add 1 and 2", "3"), ("say hi", "hi")], context_length=64)
    history = train(model, lambda: batch, steps=2, progress=False)
    assert len(history.losses) == 2
    assert isinstance(instruct.generate(model, tokenizer, "say hi", max_new_tokens=4), str)


@on_every_device
def test_the_reward_model_scores_and_learns_on_the_device(device):
    reward_model = rlhf.ScalarHead(tiny_gpt(), d_model=16).to(device)
    chosen, rejected = ids_on(device, (3, 7)), ids_on(device, (3, 7)).flip(1)
    lengths = torch.tensor([7, 5, 6])  # on the CPU: `score` moves them
    loss = rlhf.pairwise_loss(reward_model.score(chosen, lengths), reward_model.score(rejected, lengths))
    loss.backward()
    assert reward_model.scalar.weight.grad.device.type == device


@on_every_device
def test_a_ppo_step_runs_on_the_device(device):
    sft = tiny_gpt().to(device)
    policy = rlhf.ScalarHead(copy.deepcopy(sft), d_model=16).to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    config = rlhf.PPOConfig(samples_per_prompt=2, max_new_tokens=4, epochs=1)

    def reward_fn(ids, lengths):  # reward token 3, computed wherever the ids are
        return (ids == 3).float().mean(dim=1)

    stats = rlhf.ppo_step(policy, sft, reward_fn, [[1, 2], [2, 1]], optimizer, config,
                          generator=torch.Generator().manual_seed(0))
    assert set(stats) >= {"score", "kl", "length"} and stats["length"] == 4


@on_every_device
@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_layers_compute_the_cpu_result_on_the_device(device, bits):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    layer = quantization.Int8Linear(linear) if bits == 8 else quantization.Int4Linear(linear, group_size=32)
    x = torch.randn(3, 64)
    expected = layer(x)
    got = layer.to(device)(x.to(device))
    assert got.device.type == device
    torch.testing.assert_close(got.cpu(), expected, atol=0.05, rtol=0.02)  # bf16 kernels


def test_the_device_list_always_has_the_cpu_and_matches_runtime():
    assert DEVICES[0] == "cpu"
    assert runtime.get_device().type in DEVICES


@on_every_device
def test_generation_speed_times_exactly_the_new_tokens_on_the_device(device):
    from course_lib.generation import generation_speed

    model = tiny_llama().to(device)
    found = generation_speed(model, ids_on(device, (1, 3)), new_tokens=5)
    assert found["ids"].shape == (1, 8) and found["ids"].device.type == device
    assert found["tokens_per_second"] > 0 and found["seconds"] > 0
