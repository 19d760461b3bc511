"""Each course_lib.distributed script, run by torchrun with 2 processes, trains exactly like one process.

Every script reports its own losses beside those of single-process training (same model, seed and
batches, computed in rank 0), plus how many parameter and optimizer-state elements each rank kept.
"""

import pytest

from course_lib import distributed
from course_lib.distributed import common

STEPS = 3
PARAMS = sum(p.numel() for p in common.build_model().parameters())


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
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
