"""Training on several devices with torch.distributed: one script per technique (notebook 11).

ddp.py (data parallel), zero1.py (ZeRO-1: sharded optimizer states), fsdp.py (FSDP2: ZeRO-3 sharding),
tensor_parallel.py (Megatron-style column / row splits), pipeline_parallel.py (GPipe). Each trains
`common.tiny_config()` from the same seed and reports its losses beside one process training alone.
`launch` starts one of them with torchrun from Python; `communication_bytes` estimates what each
technique sends per step; `SPLITS` says what each one divides among the devices.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from course_lib.validation import check_choice, check_positive_int

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


def launch(technique: str, nproc: int = 2, steps: int = 4, lr: float | None = None,
           timeout: float = 600) -> dict:
    """Run `technique`'s script in `nproc` processes with torchrun and return rank 0's report.

    The report holds the losses, the single-process losses, their largest difference and, per rank,
    how many parameter and optimizer-state elements it kept. A non-zero exit raises with the log's end.
    """
    check_positive_int("nproc", nproc)
    check_positive_int("steps", steps)
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}",
               str(script_path(technique)), "--steps", str(steps)]
    if lr is not None:
        command += ["--lr", str(lr)]
    env = dict(os.environ)  # the children import this very course_lib, wherever it lives
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent.parent), env.get("PYTHONPATH")]))
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{technique}: torchrun exited with status {done.returncode}\n"
                           f"{(done.stdout + done.stderr)[-3000:]}")
    for line in done.stdout.splitlines():
        if line.startswith(REPORT_PREFIX):
            return json.loads(line[len(REPORT_PREFIX):])
    raise RuntimeError(f"{technique}: no report line in the output\n{done.stdout[-3000:]}")


def communication_bytes(technique: str, n_params: float, world: int, bytes_per_value: float = 2,
                        tokens: int = 0, d_model: int = 0, n_layers: int = 0) -> float:
    """Bytes each device sends per training step, with ring collectives (estimates, not measured).

    An all-reduce of S bytes sends 2·(N-1)/N·S per device; a reduce-scatter or an all-gather (N-1)/N·S.
    ddp and zero1: one all-reduce of the gradients (ZeRO's paper: reduce-scatter + all-gather, the same
    volume); fsdp: all-gather the weights for forward and again for backward, reduce-scatter the
    gradients (1.5× ddp); tensor_parallel: 2 all-reduces of the activations (tokens × d_model) per layer
    forward and 2 backward; pipeline_parallel: activations forward and their gradients backward at each
    stage boundary (here `world` stages), shared by the devices.
    """
    check_choice("technique", technique, sorted(SCRIPTS))
    check_positive_int("world", world)
    if not n_params > 0:
        raise ValueError(f"n_params: expected a positive number, got {n_params!r}")
    ring = (world - 1) / world
    model_bytes = n_params * bytes_per_value
    if technique in ("ddp", "zero1"):
        return 2 * ring * model_bytes
    if technique == "fsdp":
        return 3 * ring * model_bytes
    if min(tokens, d_model, n_layers) < 1:
        raise ValueError(f"tokens, d_model, n_layers: {technique} sends activations, so all three must be "
                         f"positive, got {tokens}, {d_model}, {n_layers}")
    activation = tokens * d_model * bytes_per_value
    if technique == "tensor_parallel":
        return 4 * n_layers * 2 * ring * activation
    return 2 * (world - 1) * activation / world


__all__ = ["SCRIPTS", "PARTS", "SPLITS", "script_path", "free_port", "launch", "communication_bytes"]
