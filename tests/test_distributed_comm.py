"""course_lib.distributed.comm counts the collectives torch.distributed runs, and only those, by payload.

Checked in this process, in a one-process gloo group: each kind of call is tallied once with the bytes
of the tensor it works on, whether our code calls it (`dist.all_reduce`) or a library does through the
functional collectives (DTensor's route). The two-process runs of test_distributed.py check the counts
of DDP, ZeRO-1, FSDP2, tensor and pipeline parallelism against the formulas.
"""

import pytest
import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol

from course_lib import distributed
from course_lib.distributed import comm


@pytest.fixture(scope="module")
def group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield dist.group.WORLD
    dist.destroy_process_group()


def test_each_collective_is_counted_once_with_its_payload(group):
    counter = comm.Counter()
    with counter.step():
        dist.all_reduce(torch.ones(3, 4))  # 12 float32: 48 bytes
        dist.all_reduce(torch.ones(2))  # 8 bytes more
        dist.broadcast(torch.zeros(5, dtype=torch.int64), src=0)  # 40 bytes
        dist.all_gather([torch.empty(6)], torch.ones(6))  # the gathered outputs: 24 bytes
        funcol.wait_tensor(funcol.all_reduce(torch.ones(10, dtype=torch.float16), "sum", group))  # 20 bytes
    with counter.step():
        torch.ones(4, 4) @ torch.ones(4, 4)  # not a collective
    assert counter.steps == [
        {"all_gather": {"calls": 1, "bytes": 24}, "all_reduce": {"calls": 3, "bytes": 48 + 8 + 20},
         "broadcast": {"calls": 1, "bytes": 40}},
        {},
    ]


def test_counting_changes_no_result(group):
    tensor = torch.arange(6.0)
    with comm.Counter().step():
        dist.all_reduce(tensor)
        doubled = tensor * 2
    assert torch.equal(doubled, torch.arange(6.0) * 2)  # a one-process sum is the tensor itself


def test_payloads_of_ops_nobody_calls_here():
    c10d = torch.ops.c10d
    reduce_scatter = c10d._reduce_scatter_base_.default  # (output, input): the input is the payload
    assert comm.payloads(reduce_scatter, (torch.empty(2), torch.empty(4))) == [("reduce_scatter", 16)]
    assert comm.payloads(c10d.send.default, ([torch.empty(3)],)) == [("send", 12)]
    assert comm.payloads(c10d.recv_.default, ([torch.empty(3, dtype=torch.float64)],)) == [("recv", 24)]
    functional = torch.ops._c10d_functional
    assert comm.payloads(functional.all_gather_into_tensor.default, (torch.empty(4), 2, "g")) == [("all_gather", 32)]
    assert comm.payloads(torch.ops.aten.mm.default, (torch.empty(2, 2), torch.empty(2, 2))) == []


def test_ring_traffic_from_payloads():
    # an all-reduce of 100 bytes on 4 ranks: reduce-scatter then all-gather, 3/4 of it each
    assert comm.sent_bytes("all_reduce", 100, world=4) == pytest.approx(150)
    assert comm.sent_bytes("all_gather", 100, world=4) == pytest.approx(75)
    assert comm.sent_bytes("recv", 100, world=4) == 0
    with pytest.raises(ValueError, match="kind: expected one of"):
        comm.sent_bytes("gossip", 100, world=4)


def test_predicted_payloads_by_hand():
    # 1e9 bf16 parameters (2 GB) on 8 devices
    assert distributed.collective_bytes("ddp", 1e9, 8) == {"all_reduce": 2e9}
    assert distributed.collective_bytes("zero1", 1e9, 8) == {"all_reduce": 2e9, "broadcast": 2e9}
    assert distributed.collective_bytes("fsdp", 1e9, 8) == {"all_gather": 4e9, "reduce_scatter": 2e9}  # 3Ψ
    assert distributed.collective_bytes("fsdp", 1e9, 8, n_params_kept=1e8)["all_gather"] == pytest.approx(3.8e9)
    sizes = {"tokens": 1000, "d_model": 100, "n_layers": 3}
    assert distributed.collective_bytes("tensor_parallel", 1e9, 2, **sizes) == {"all_reduce": 4 * 3 * 1000 * 100 * 2}
    pp = distributed.collective_bytes("pipeline_parallel", 1e9, 4, **sizes)  # 3 boundaries, 4 stages
    assert pp == {"send": pytest.approx(3 * 2 * 1000 * 100 * 2 / 4), "recv": pytest.approx(3 * 2 * 1000 * 100 * 2 / 4)}
