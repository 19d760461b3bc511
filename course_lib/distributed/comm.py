"""Counting what the collectives of `torch.distributed` really move, per training step (notebook 11).

Most collectives are not called by our scripts but inside PyTorch: DDP's C++ reducer all-reduces the
gradient buckets, `ZeroRedundancyOptimizer` broadcasts the updated shards, FSDP2 all-gathers and
reduce-scatters, DTensor (tensor parallel) calls the functional collectives, and
`torch.distributed.pipelining` sends and receives. All of them reach the process group through the
dispatcher as `c10d::*` ops (`c10d::allreduce_`, `c10d::_allgather_base_`, `c10d::send`, ...) or as
functional collectives (`_c10d_functional::all_reduce`, ...). `Counter` watches that door with a
`TorchDispatchMode` (the mechanism of PyTorch's own `CommDebugMode`, which counts calls but not bytes),
so it sees every collective whoever calls it, and runs it unchanged.

What is counted, per rank and per collective kind: the number of calls and the **payload**, numel ×
element size of the whole tensor the collective works on: the tensor all-reduced or broadcast; the
gathered output of an all-gather (N × this rank's shard); the input of a reduce-scatter (N × the shard
it returns); the tensor sent, or received, by a point-to-point send / recv. The payload is what the
formulas of `course_lib.distributed.collective_bytes` predict. It is not the bytes on the wire: a ring
all-reduce sends 2·(N-1)/N × its payload from each rank, a ring all-gather or reduce-scatter
(N-1)/N ×; `sent_bytes` converts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

# c10d op -> (collective kind, index of the argument whose size is the payload)
C10D_OPS = {
    "allreduce_": ("all_reduce", 0), "allreduce_coalesced_": ("all_reduce", 0),
    "broadcast_": ("broadcast", 0), "reduce_": ("reduce", 0),
    "allgather_": ("all_gather", 0), "_allgather_base_": ("all_gather", 0),
    "allgather_coalesced_": ("all_gather", 0), "allgather_into_tensor_coalesced_": ("all_gather", 0),
    "reduce_scatter_": ("reduce_scatter", 1), "_reduce_scatter_base_": ("reduce_scatter", 1),
    "reduce_scatter_tensor_coalesced_": ("reduce_scatter", 1),
    "alltoall_": ("all_to_all", 1), "alltoall_base_": ("all_to_all", 1),
    "gather_": ("gather", 1), "scatter_": ("scatter", 0),
    "send": ("send", 0), "recv_": ("recv", 0), "recv_any_source_": ("recv", 0),
}
# functional collective -> collective kind; all take the tensor (or list of tensors) first
FUNCTIONAL_OPS = {
    "all_reduce": "all_reduce", "all_reduce_": "all_reduce", "all_reduce_coalesced": "all_reduce",
    "all_reduce_coalesced_": "all_reduce", "broadcast": "broadcast", "broadcast_": "broadcast",
    "all_gather_into_tensor": "all_gather", "all_gather_into_tensor_out": "all_gather",
    "all_gather_into_tensor_coalesced": "all_gather", "reduce_scatter_tensor": "reduce_scatter",
    "reduce_scatter_tensor_out": "reduce_scatter", "reduce_scatter_tensor_coalesced": "reduce_scatter",
    "all_to_all_single": "all_to_all", "isend": "send", "irecv": "recv",
}


def nbytes(tensors) -> int:
    """numel × element size, summed over a tensor or (nested) lists of tensors."""
    if isinstance(tensors, Tensor):
        return tensors.numel() * tensors.element_size()
    if isinstance(tensors, (list, tuple)):
        return sum(nbytes(t) for t in tensors)
    return 0


def payloads(func, args: tuple) -> list[tuple[str, int]]:
    """The (kind, payload bytes) of one dispatched op: empty if it is not a collective."""
    namespace, _, name = func._schema.name.partition("::")
    if namespace == "c10d" and name in C10D_OPS:
        kind, index = C10D_OPS[name]
        return [(kind, nbytes(args[index]))]
    if namespace in ("_c10d_functional", "_c10d_functional_autograd"):
        if name == "batch_p2p_ops":  # (op_list, peer_list, tag_list, tensors, group)
            return [("send" if op == "isend" else "recv", nbytes(t)) for op, t in zip(args[0], args[3])]
        if name in FUNCTIONAL_OPS:
            kind, size = FUNCTIONAL_OPS[name], nbytes(args[0])
            if kind == "all_gather":
                size *= args[1]  # (input, group_size, ...): the output is group_size shards
            return [(kind, size)]
    return []


class CountingMode(TorchDispatchMode):
    """Sees every tensor op while active; tallies the collectives in `tally` ({kind: {"calls", "bytes"}})."""

    def __init__(self) -> None:
        super().__init__()
        self.tally: dict[str, dict[str, int]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.distributed.tensor import DTensor

        if any(issubclass(t, DTensor) for t in types):
            return NotImplemented  # let DTensor turn the op into local ops and collectives, then see those
        for kind, size in payloads(func, args):
            entry = self.tally.setdefault(kind, {"calls": 0, "bytes": 0})
            entry["calls"] += 1
            entry["bytes"] += size
        return func(*args, **(kwargs or {}))


class Counter:
    """The collectives of each training step: wrap every step in `with counter.step():`; `steps` then
    holds one {kind: {"calls": n, "bytes": payload}} per step, in this process (rank)."""

    def __init__(self) -> None:
        self.steps: list[dict[str, dict[str, int]]] = []

    @contextmanager
    def step(self) -> Iterator[None]:
        mode = CountingMode()
        with mode:
            yield
        self.steps.append(dict(sorted(mode.tally.items())))


def sent_bytes(kind: str, payload: float, world: int) -> float:
    """Bytes one rank puts on the wire for a collective of `payload` bytes, with ring algorithms:
    all-reduce 2·(N-1)/N (a reduce-scatter then an all-gather), all-gather, reduce-scatter and broadcast
    (N-1)/N (a broadcast averaged over the ranks), send 1, recv 0."""
    ring = (world - 1) / world
    factors = {"all_reduce": 2 * ring, "all_gather": ring, "reduce_scatter": ring, "broadcast": ring,
               "send": 1.0, "recv": 0.0}
    if kind not in factors:
        raise ValueError(f"kind: expected one of {sorted(factors)}, got {kind!r}")
    return factors[kind] * payload


__all__ = ["Counter", "CountingMode", "nbytes", "payloads", "sent_bytes"]
