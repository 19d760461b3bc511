"""Each course_lib.distributed script, run by torchrun with 2 processes, trains exactly like one process.

Every script reports its own losses beside those of single-process training (same model, seed and
batches, computed in rank 0), how many parameter and optimizer-state elements each rank kept, and the
collectives it called in a step, whose payloads equal the formulas of `collective_bytes` exactly.
The same scripts run as two "machines" (two torchrun agents) train the same way.
"""

import subprocess
import sys

import pytest

from course_lib import distributed
from course_lib.distributed import common

STEPS = 3
PARAMS = sum(p.numel() for p in common.build_model().parameters())
CONFIG = common.tiny_config()
TOKENS = common.RunConfig().batch * common.RunConfig().seq_len  # one global batch: 8 x 16
ACTIVATION = TOKENS * CONFIG.d_model * 4  # fp32 activations of one global batch, in bytes
ROOT_PARAMS = 2 * CONFIG.vocab_size * CONFIG.d_model + CONFIG.context_length * CONFIG.d_model + 2 * CONFIG.d_model


@pytest.fixture(scope="module")
def reference():
    return common.train_single(common.RunConfig(steps=STEPS))


@pytest.fixture(scope="module", params=sorted(distributed.SCRIPTS))
def result(request):
    return distributed.launch(request.param, nproc=2, steps=STEPS)


def test_two_processes_reproduce_single_process_losses(result, reference):
    assert result["world_size"] == 2
    assert result["reference"] == pytest.approx(reference, abs=1e-6)  # the script's reference is ours
    assert result["losses"] == pytest.approx(reference, abs=1e-5)
    assert result["max_difference"] < 1e-5
    assert reference[-1] < reference[0]  # and training does something


def test_each_technique_keeps_what_it_is_supposed_to(result):
    held = result["held"]
    params = [rank["parameters"] for rank in held]
    states = [rank["optimizer state"] for rank in held]
    technique = result["technique"]
    if technique == "DDP":
        assert params == [PARAMS, PARAMS] and states == [2 * PARAMS, 2 * PARAMS]  # full copies everywhere
    elif technique == "ZeRO-1":
        assert params == [PARAMS, PARAMS] and sum(states) == 2 * PARAMS  # Adam's moments split
    elif technique == "FSDP (ZeRO-3)":
        assert sum(params) == PARAMS and sum(states) == 2 * PARAMS and params[0] == params[1]
    elif technique == "pipeline parallel":
        assert sum(params) == PARAMS and min(params) > 0  # each stage holds its own layers
    else:
        assert technique == "tensor parallel"
        assert PARAMS / 2 < params[0] == params[1] < PARAMS  # blocks split, embeddings replicated


def test_each_technique_sends_what_the_formula_says(result):
    """Payload per rank in one step, counted on rank 0, against a hand count: exact, no tolerance."""
    sent = {kind: entry["bytes"] for kind, entry in result["communication"].items()}
    calls = {kind: entry["calls"] for kind, entry in result["communication"].items()}
    technique = result["technique"]
    assert result["sizes"]["n_params"] == PARAMS
    if technique == "DDP":  # the gradients, in one bucket (122 kB < DDP's first bucket of 1 MiB)
        assert sent == {"all_reduce": PARAMS * 4} and calls == {"all_reduce": 1}
    elif technique == "ZeRO-1":  # DDP's all-reduce, then every parameter broadcast by its owner
        assert sent == {"all_reduce": PARAMS * 4, "broadcast": PARAMS * 4}
        assert calls["broadcast"] == len(list(common.build_model().parameters()))
    elif technique == "FSDP (ZeRO-3)":  # no padding: every dim 0 is even; the root is not re-gathered
        assert sent == {"all_gather": (2 * PARAMS - ROOT_PARAMS) * 4, "reduce_scatter": PARAMS * 4}
        assert calls == {"all_gather": 3 + 2, "reduce_scatter": 3}  # root + 2 blocks forward, 2 blocks backward
    elif technique == "pipeline parallel":  # rank 0 sends activations and receives their gradients
        assert sent == {"send": ACTIVATION, "recv": ACTIVATION}
        assert calls == {"send": 4, "recv": 4}  # one per micro-batch
    else:  # Megatron: 2 all-reduces per layer forward, 2 backward, of the whole batch's activations
        assert sent == {"all_reduce": 4 * CONFIG.n_layers * ACTIVATION}
        assert calls == {"all_reduce": 4 * CONFIG.n_layers}
    rows = [row for row in distributed.measured_vs_predicted(result) if row["collective"] != "sent per rank (ring)"]
    assert {row["collective"] for row in rows} == set(sent)
    assert all(row["ratio"] == 1.0 for row in rows)


def test_every_step_after_set_up_moves_the_same_payload(result):
    steps = result["communication_steps"]
    assert len(steps) == STEPS and steps[-1] == result["communication"]
    assert all(rank == result["communication"] for rank in result["communication_by_rank"])  # ranks agree
    # Set-up traffic comes on top, once: the pipeline sends tensor shapes in step 0, DDP (and ZeRO-1 on it)
    # broadcasts its rebuilt bucket order in step 1. A few hundred bytes, no more.
    set_up = {"pipeline parallel": 0, "DDP": 1, "ZeRO-1": 1}.get(result["technique"])
    for index, step in enumerate(steps):
        total = sum(entry["bytes"] for entry in step.values())
        if index == set_up:
            assert 0 < total - sum(entry["bytes"] for entry in result["communication"].values()) < 1000
        else:
            assert step == result["communication"]


def test_ring_traffic_beside_the_textbook_estimate(result):
    """`communication_bytes` is the textbook count; PyTorch's ZeRO-1 sends more, its FSDP2 a little less."""
    row = distributed.measured_vs_predicted(result)[-1]
    assert row["collective"] == "sent per rank (ring)"
    expected = {"ZeRO-1": 1.5, "FSDP (ZeRO-3)": (3 * PARAMS - ROOT_PARAMS) / (3 * PARAMS)}
    assert row["ratio"] == pytest.approx(expected.get(result["technique"], 1.0), rel=1e-12)


@pytest.mark.parametrize("technique, rendezvous", [("ddp", "c10d"), ("fsdp", "static")])
def test_two_machines_rehearsed_on_one_train_like_one_process(technique, rendezvous, reference):
    result = distributed.launch_multinode(technique, nnodes=2, nproc_per_node=1, steps=STEPS,
                                          rendezvous=rendezvous)
    assert result["world_size"] == 2 and result["script"] == technique
    assert result["losses"] == pytest.approx(reference, abs=1e-5)
    assert all(row["ratio"] == 1.0 for row in distributed.measured_vs_predicted(result)
               if row["collective"] != "sent per rank (ring)")


def test_a_failing_agent_raises_with_every_log(monkeypatch):
    commands = iter([[sys.executable, "-c", "print('node zero was fine')"],
                     [sys.executable, "-c", "print('node one broke'); raise SystemExit(3)"]])
    monkeypatch.setattr(distributed, "agent_command", lambda *args: next(commands))
    with pytest.raises(RuntimeError, match=r"(?s)status \[0, 3\].*node zero was fine.*node one broke"):
        distributed.launch_multinode("ddp", timeout=60)


def test_an_agent_left_waiting_is_killed():
    agents = [subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"]),
              subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])]
    assert distributed._wait_all(agents, timeout=60, grace=0.5) == [1, None]
    assert agents[1].returncode is not None  # killed, not left behind


def test_agent_commands_as_typed_on_two_machines():
    c10d = distributed.agent_command("ddp", 1, host="10.0.0.1", port=29500)
    assert c10d[1:] == ["-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d",
                        "--rdzv_endpoint=10.0.0.1:29500", "--rdzv_id=course",
                        str(distributed.script_path("ddp")), "--steps", "4"]
    static = distributed.agent_command("fsdp", 1, nproc_per_node=4, host="10.0.0.1", rendezvous="static")
    assert "--node_rank=1" in static and "--master_addr=10.0.0.1" in static and "--nproc_per_node=4" in static


def test_communication_estimates_by_hand():
    # 1e9 bf16 parameters on 4 devices: an all-reduce sends 2 * 3/4 * 2 GB = 3 GB per device
    assert distributed.communication_bytes("ddp", 1e9, world=4) == pytest.approx(3e9)
    assert distributed.communication_bytes("fsdp", 1e9, world=4) == pytest.approx(4.5e9)
    tp = distributed.communication_bytes("tensor_parallel", 1e9, world=2, tokens=1000, d_model=100, n_layers=3)
    assert tp == pytest.approx(4 * 3 * 2 * 0.5 * 1000 * 100 * 2)
    pp = distributed.communication_bytes("pipeline_parallel", 1e9, world=2, tokens=1000, d_model=100, n_layers=3)
    assert pp == pytest.approx(2 * 1000 * 100 * 2 / 2)


@pytest.mark.parametrize("call, message", [
    (lambda: distributed.script_path("horovod"), "technique: expected one of"),
    (lambda: distributed.launch("ddp", nproc=0), "nproc: expected a positive int, got 0"),
    (lambda: distributed.communication_bytes("ddp", 1e9, world=0), "world: expected a positive int"),
    (lambda: distributed.communication_bytes("tensor_parallel", 1e9, world=2), "tokens, d_model, n_layers"),
    (lambda: distributed.collective_bytes("fsdp", 100, world=2, n_params_kept=101), "n_params_kept: expected 0 to"),
    (lambda: distributed.collective_bytes("ddp", 0, world=2), "n_params: expected a positive number"),
    (lambda: distributed.launch_multinode("ddp", nnodes=0), "nnodes: expected a positive int, got 0"),
    (lambda: distributed.launch_multinode("ddp", rendezvous="etcd"), "rendezvous: expected one of"),
    (lambda: distributed.launch_multinode("ddp", timeout=0), "timeout: expected a positive number"),
    (lambda: distributed.agent_command("ddp", node_rank=2, nnodes=2), "node_rank: expected 0 to 1"),
    (lambda: distributed.measured_vs_predicted([{"losses": []}]), "results: expected reports of `launch`"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
