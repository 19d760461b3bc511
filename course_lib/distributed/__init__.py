"""Training on several devices with torch.distributed: one script per technique (notebook 11).

ddp.py (data parallel), zero1.py (ZeRO-1: sharded optimizer states), fsdp.py (FSDP2: ZeRO-3 sharding),
tensor_parallel.py (Megatron-style column / row splits), pipeline_parallel.py (GPipe). Each trains
`common.tiny_config()` from the same seed and reports its losses beside one process training alone,
and the collectives it really called in a step (counted by `comm.Counter`). `launch` starts one of
them with torchrun from Python, `launch_multinode` as two "machines" (two torchrun agents) on this
one; `collective_bytes` predicts the payload of each collective, `measured_vs_predicted` sets the
counts beside it; `communication_bytes` estimates the bytes each device sends per step; `SPLITS`
says what each technique divides among the devices.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from course_lib.distributed.comm import sent_bytes
from course_lib.validation import (
    check_choice,
    check_non_negative_int,
    check_positive_int,
)

HERE = Path(__file__).resolve().parent
SCRIPTS = {"ddp": "ddp.py", "zero1": "zero1.py", "fsdp": "fsdp.py",
           "tensor_parallel": "tensor_parallel.py", "pipeline_parallel": "pipeline_parallel.py"}
REPORT_PREFIX = "RESULT "

# What each device holds with 2 devices: "all" (a full copy) or how the thing is divided.
PARTS = ("parameters", "gradients", "optimizer states", "activations")
SPLITS = {
    "data parallel (DDP)": {"parameters": "all", "gradients": "all", "optimizer states": "all",
                            "activations": "by batch"},
    "ZeRO-1": {"parameters": "all", "gradients": "all", "optimizer states": "by parameter",
               "activations": "by batch"},
    "FSDP / ZeRO-3": {"parameters": "by parameter", "gradients": "by parameter",
                      "optimizer states": "by parameter", "activations": "by batch"},
    "tensor parallel": {"parameters": "by column / row", "gradients": "by column / row",
                        "optimizer states": "by column / row", "activations": "by head / hidden unit"},
    "pipeline parallel": {"parameters": "by layer", "gradients": "by layer", "optimizer states": "by layer",
                          "activations": "by layer"},
}


def script_path(technique: str) -> Path:
    """The file of one technique's training script (run it with torchrun)."""
    check_choice("technique", technique, sorted(SCRIPTS))
    return HERE / SCRIPTS[technique]


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it when we bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children_env() -> dict:
    env = dict(os.environ)  # the children import this very course_lib, wherever it lives
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent.parent), env.get("PYTHONPATH")]))
    return env


def _find_report(technique: str, output: str) -> dict:
    for line in output.splitlines():
        if line.startswith(REPORT_PREFIX):
            return json.loads(line[len(REPORT_PREFIX):])
    raise RuntimeError(f"{technique}: no report line in the output\n{output[-3000:]}")


def launch(technique: str, nproc: int = 2, steps: int = 4, lr: float | None = None,
           timeout: float = 600) -> dict:
    """Run `technique`'s script in `nproc` processes with torchrun and return rank 0's report.

    The report holds the losses, the single-process losses, their largest difference, per rank how
    many parameter and optimizer-state elements it kept, and the collectives of a step
    ("communication", see `common.communication`). A non-zero exit raises with the log's end.
    """
    check_positive_int("nproc", nproc)
    check_positive_int("steps", steps)
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}",
               str(script_path(technique)), "--steps", str(steps)]
    if lr is not None:
        command += ["--lr", str(lr)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_children_env())
    if done.returncode != 0:
        raise RuntimeError(f"{technique}: torchrun exited with status {done.returncode}\n"
                           f"{(done.stdout + done.stderr)[-3000:]}")
    return _find_report(technique, done.stdout)


RENDEZVOUS = ("c10d", "static")


def agent_command(technique: str, node_rank: int, nnodes: int = 2, nproc_per_node: int = 1, steps: int = 4,
                  host: str = "127.0.0.1", port: int = 29500, rendezvous: str = "c10d") -> list[str]:
    """The torchrun command one machine (node) runs to join a `nnodes`-machine run of `technique`.

    rendezvous "c10d": the agents meet at host:port (a TCP store the first agent there starts) and the
    rendezvous numbers the machines itself, in the order of their host names (then process ids);
    torchrun ignores --node_rank then (it warns), so the command is the same on every machine.
    "static": machine `node_rank` gets ranks node_rank·nproc_per_node onwards, and machine 0 must
    be `host`.
    """
    check_choice("rendezvous", rendezvous, RENDEZVOUS)
    check_positive_int("nnodes", nnodes)
    check_positive_int("nproc_per_node", nproc_per_node)
    check_positive_int("steps", steps)
    check_non_negative_int("node_rank", node_rank)
    if node_rank >= nnodes:
        raise ValueError(f"node_rank: expected 0 to {nnodes - 1} for {nnodes} nodes, got {node_rank}")
    if rendezvous == "c10d":
        meet = ["--rdzv_backend=c10d", f"--rdzv_endpoint={host}:{port}", "--rdzv_id=course"]
    else:
        meet = [f"--node_rank={node_rank}", f"--master_addr={host}", f"--master_port={port}"]
    return [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nnodes}",
            f"--nproc_per_node={nproc_per_node}", *meet, str(script_path(technique)), "--steps", str(steps)]


def _wait_all(agents: list[subprocess.Popen], timeout: float, grace: float = 20) -> list[int | None]:
    """Wait for every process; kill the rest `grace` s after one fails (the others would wait for it
    until their own rendezvous timeout) or when `timeout` runs out. Exit statuses, None where killed."""
    deadline, failed_at = time.monotonic() + timeout, None
    while any(agent.poll() is None for agent in agents):
        now = time.monotonic()
        if failed_at is None and any(agent.poll() not in (None, 0) for agent in agents):
            failed_at = now
        if now > deadline or (failed_at is not None and now > failed_at + grace):
            break
        time.sleep(0.1)
    codes = [agent.poll() for agent in agents]
    for agent in agents:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    return codes


def launch_multinode(technique: str, nnodes: int = 2, nproc_per_node: int = 1, steps: int = 4,
                     rendezvous: str = "c10d", timeout: float = 600) -> dict:
    """Rehearse a multi-machine run on this one: start `nnodes` torchrun agents as separate processes,
    each as if on its own machine, all meeting on 127.0.0.1; wait for all of them (at most `timeout`
    seconds), check every exit status and return rank 0's report. A failure raises with each log's end.

    On two real machines (HOST: the first machine's address, reachable from the second; G: GPUs, or
    CPU processes, per machine), type on each machine, in the repository:

        python -m torch.distributed.run --nnodes=2 --nproc_per_node=G --rdzv_backend=c10d \
            --rdzv_endpoint=HOST:29500 --rdzv_id=course course_lib/distributed/ddp.py --steps 4

    The same line on both: the c10d rendezvous numbers the machines itself (by host name) and ignores
    --node_rank. To fix which machine is rank 0, use the static rendezvous instead, with R = 0 on HOST
    and R = 1 on the other:

        python -m torch.distributed.run --nnodes=2 --node_rank=R --nproc_per_node=G \
            --master_addr=HOST --master_port=29500 course_lib/distributed/ddp.py --steps 4

    Port 29500 (and, for the workers, other free ports on rank 0's machine) must be open between the
    machines. If gloo picks the wrong network interface, set GLOO_SOCKET_IFNAME (NCCL_SOCKET_IFNAME on
    GPUs) to the one that links them; on one machine, loopback works without it.
    """
    check_positive_int("nnodes", nnodes)
    check_choice("rendezvous", rendezvous, RENDEZVOUS)
    if not timeout > 0:
        raise ValueError(f"timeout: expected a positive number of seconds, got {timeout!r}")
    port = free_port()
    commands = [agent_command(technique, node, nnodes, nproc_per_node, steps, "127.0.0.1", port, rendezvous)
                for node in range(nnodes)]
    with contextlib.ExitStack() as files:  # one log file per agent: a pipe could fill up and stall it
        logs = [files.enter_context(tempfile.TemporaryFile(mode="w+")) for _ in commands]
        agents = [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, env=_children_env())
                  for command, log in zip(commands, logs)]
        codes = _wait_all(agents, timeout)
        outputs = []
        for log in logs:
            log.seek(0)
            outputs.append(log.read())
    ends = "\n".join(f"--- node {node} ---\n{output[-2000:]}" for node, output in enumerate(outputs))
    if None in codes:
        raise RuntimeError(f"{technique}: torchrun agents did not all finish within {timeout} s "
                           f"(exit statuses {codes}, None: killed)\n{ends}")
    if any(codes):
        raise RuntimeError(f"{technique}: torchrun agents exited with status {codes}\n{ends}")
    return _find_report(technique, "\n".join(outputs))  # rank 0 runs on whichever node the rendezvous chose


def _activation_sizes(technique: str, tokens: int, d_model: int, n_layers: int) -> None:
    if min(tokens, d_model, n_layers) < 1:
        raise ValueError(f"tokens, d_model, n_layers: {technique} sends activations, so all three must be "
                         f"positive, got {tokens}, {d_model}, {n_layers}")


def collective_bytes(technique: str, n_params: float, world: int, bytes_per_value: float = 2,
                     tokens: int = 0, d_model: int = 0, n_layers: int = 0,
                     n_params_kept: float = 0) -> dict[str, float]:
    """The payload of each kind of collective one rank calls in a training step of `technique`, as
    PyTorch's engines in the course's scripts do it: what `comm.Counter` measures (numel × bytes of the
    whole tensor each collective works on; see `comm` for how that relates to bytes on the wire).

    Ψ = n_params × bytes_per_value, A = tokens × d_model × bytes_per_value (one global batch's activations).
    ddp: all-reduce the gradients, Ψ. zero1 (`ZeroRedundancyOptimizer` on DDP): the same all-reduce, then
    each updated parameter broadcast by the rank that owns it, Ψ. fsdp: all-gather every weight for
    forward and again for backward, 2Ψ, less the `n_params_kept` parameters that stay gathered from
    forward to backward (FSDP2 keeps the root's); reduce-scatter the gradients, Ψ. tensor_parallel
    (Megatron): 2 all-reduces of the activations per layer forward (attention output, feed-forward
    output) and 2 of their gradients backward (the inputs of q/k/v and of the feed-forward), 4·n_layers·A.
    pipeline_parallel (`world` stages): every activation crossing a stage boundary is sent forward and
    its gradient sent back, (world - 1)·A each way, 2·(world - 1)/world·A sent and as much received
    per rank on average (the end stages send half what the middle ones do).
    """
    check_choice("technique", technique, sorted(SCRIPTS))
    check_positive_int("world", world)
    if not n_params > 0:
        raise ValueError(f"n_params: expected a positive number, got {n_params!r}")
    if not 0 <= n_params_kept <= n_params:
        raise ValueError(f"n_params_kept: expected 0 to n_params ({n_params}), got {n_params_kept!r}")
    model_bytes = n_params * bytes_per_value
    if technique == "ddp":
        return {"all_reduce": model_bytes}
    if technique == "zero1":
        return {"all_reduce": model_bytes, "broadcast": model_bytes}
    if technique == "fsdp":
        return {"all_gather": 2 * model_bytes - n_params_kept * bytes_per_value, "reduce_scatter": model_bytes}
    _activation_sizes(technique, tokens, d_model, n_layers)
    activation = tokens * d_model * bytes_per_value
    if technique == "tensor_parallel":
        return {"all_reduce": 4 * n_layers * activation}
    per_rank = 2 * (world - 1) / world * activation
    return {"send": per_rank, "recv": per_rank}


def communication_bytes(technique: str, n_params: float, world: int, bytes_per_value: float = 2,
                        tokens: int = 0, d_model: int = 0, n_layers: int = 0) -> float:
    """Bytes each device sends per training step, with ring collectives (an estimate from the formulas).

    An all-reduce of S bytes sends 2·(N-1)/N·S per device; a reduce-scatter or an all-gather (N-1)/N·S.
    ddp and zero1: one all-reduce of the gradients (ZeRO's paper does stage 1 as a reduce-scatter of the
    gradients and an all-gather of the updated weights: the same volume; PyTorch's
    `ZeroRedundancyOptimizer` adds a broadcast to DDP's all-reduce, see `collective_bytes`);
    fsdp: all-gather the weights for forward and again for backward, reduce-scatter the
    gradients (1.5× ddp); tensor_parallel: 2 all-reduces of the activations (tokens × d_model) per layer
    forward and 2 backward; pipeline_parallel: activations forward and their gradients backward at each
    stage boundary (here `world` stages), shared by the devices.
    """
    check_choice("technique", technique, sorted(SCRIPTS))
    paper = "ddp" if technique == "zero1" else technique
    payloads = collective_bytes(paper, n_params, world, bytes_per_value, tokens, d_model, n_layers)
    return sum(sent_bytes(kind, size, world) for kind, size in payloads.items())


SENT_ROW = "sent per rank (ring)"


def measured_vs_predicted(results: Mapping | Iterable[Mapping]) -> list[dict]:
    """Rows {technique, collective, calls, measured_bytes, predicted_bytes, ratio} for one report of
    `launch` or several (a list, or a dict of them as notebook 11 keeps them).

    Per collective kind: the payload rank 0 counted in a step (the last one; see `common.communication`)
    against `collective_bytes` for the run's sizes; ratio = measured / predicted (None if nothing was
    predicted). Then, per technique, the row "sent per rank (ring)": the measured payloads converted to
    ring traffic (`comm.sent_bytes`) against `communication_bytes`, the textbook estimate (ZeRO-1 as its
    paper does it, FSDP re-gathering every weight), which PyTorch's implementations may exceed or undercut.
    """
    if isinstance(results, Mapping):
        results = [results] if "technique" in results else list(results.values())
    rows = []
    for report in results:
        if not isinstance(report, Mapping) or "communication" not in report or "sizes" not in report:
            keys = sorted(report)[:8] if isinstance(report, Mapping) else []
            raise ValueError("results: expected reports of `launch` with 'communication' and 'sizes' entries, "
                             f"got {type(report).__name__} with keys {keys}")
        sizes, measured = dict(report["sizes"]), report["communication"]
        world = sizes.pop("world")
        sizes.pop("micro_batches", None)
        predicted = collective_bytes(report["script"], world=world, **sizes)
        for kind in sorted(set(measured) | set(predicted)):
            got, want = measured.get(kind, {}).get("bytes", 0), predicted.get(kind, 0)
            rows.append({"technique": report["technique"], "collective": kind,
                         "calls": measured.get(kind, {}).get("calls", 0), "measured_bytes": got,
                         "predicted_bytes": want, "ratio": got / want if want else None})
        sizes.pop("n_params_kept", None)
        sent = sum(sent_bytes(kind, entry["bytes"], world) for kind, entry in measured.items())
        estimate = communication_bytes(report["script"], world=world, **sizes)
        rows.append({"technique": report["technique"], "collective": SENT_ROW,
                     "calls": sum(entry["calls"] for entry in measured.values()), "measured_bytes": sent,
                     "predicted_bytes": estimate, "ratio": sent / estimate})
    return rows


__all__ = [
    "PARTS",
    "RENDEZVOUS",
    "SCRIPTS",
    "SPLITS",
    "agent_command",
    "collective_bytes",
    "communication_bytes",
    "free_port",
    "launch",
    "launch_multinode",
    "measured_vs_predicted",
    "script_path",
]
