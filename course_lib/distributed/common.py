"""What every training script of `course_lib.distributed` shares: the tiny GPT, its data, the
single-process reference run, process-group set-up and the one-line JSON report.

Each script trains the same model from the same seed on the same batches as `train_single`, so the
losses it reports can be compared number for number with one process training alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn

from course_lib.distributed.comm import Counter
from course_lib.model import GPT, GPTConfig

REPORT_PREFIX = "RESULT "  # the line `launch` looks for in rank 0's output


@dataclass(frozen=True)
class RunConfig:
    """One training run: how many steps, the global batch, sequence length, learning rate, seed."""

    steps: int = 4
    batch: int = 8
    seq_len: int = 16
    lr: float = 1e-2
    seed: int = 0


def tiny_config() -> GPTConfig:
    """The tiny GPT every technique trains: 2 blocks (one per pipeline stage), 4 heads (two per
    tensor-parallel rank), no dropout (random masks would differ across processes), untied output
    layer (a matrix shared by the first and the last pipeline stage would need syncing by hand)."""
    return GPTConfig(vocab_size=64, context_length=32, d_model=32, n_layers=2, n_heads=4, d_ff=128,
                     dropout=0.0, tie_weights=False)


def build_model(seed: int = 0, device: torch.device | str = "cpu") -> GPT:
    """The tiny GPT with the weights seed `seed` gives: identical in every process."""
    torch.manual_seed(seed)
    return GPT(tiny_config()).to(device)


def batches(run: RunConfig) -> list[tuple[Tensor, Tensor]]:
    """`run.steps` global batches of (ids, targets): rows that count upward with a random start and
    stride, so there is something to learn and the loss falls within a few steps."""
    vocab = tiny_config().vocab_size
    generator = torch.Generator().manual_seed(run.seed + 1)
    out = []
    for _ in range(run.steps):
        start = torch.randint(0, vocab, (run.batch, 1), generator=generator)
        stride = torch.randint(1, 4, (run.batch, 1), generator=generator)
        rows = (start + stride * torch.arange(run.seq_len + 1)) % vocab
        out.append((rows[:, :-1].contiguous(), rows[:, 1:].contiguous()))
    return out


def make_optimizer(params, run: RunConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=run.lr)


def loss_fn(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean next-token cross-entropy, the loss of `GPT.loss`."""
    return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


def train_single(run: RunConfig, device: torch.device | str = "cpu") -> list[float]:
    """The reference: one process, the whole batch, plain AdamW. Returns the loss of each step."""
    model = build_model(run.seed, device)
    optimizer = make_optimizer(model.parameters(), run)
    losses = []
    for ids, targets in batches(run):
        loss = loss_fn(model(ids.to(device)), targets.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def data_parallel_steps(model: nn.Module, optimizer: torch.optim.Optimizer, run: RunConfig, rank: int,
                        world: int, device: torch.device, counter: Counter | None = None) -> list[float]:
    """The training loop the data-parallel scripts share (DDP, ZeRO-1, FSDP): each rank trains on its
    slice of every global batch, and the wrapper around the model averages the gradients during
    backward, so each step equals one step on the whole batch. Returns each step's loss, averaged
    over the ranks; `counter` tallies the collectives of each step."""
    if run.batch % world:
        raise ValueError(f"--batch: expected a multiple of the {world} ranks, got {run.batch}")
    share = run.batch // world
    counter = counter if counter is not None else Counter()
    losses = []
    for ids, targets in batches(run):
        mine = slice(rank * share, (rank + 1) * share)  # this rank's slice of the global batch
        with counter.step():  # counts every collective PyTorch calls in this step
            loss = loss_fn(model(ids[mine].to(device)), targets[mine].to(device))
            optimizer.zero_grad()
            loss.backward()  # DDP all-reduces the gradients here; FSDP gathers weights, reduce-scatters gradients
            optimizer.step()  # ZeRO-1 and FSDP: each rank updates only its own shard (ZeRO-1 then broadcasts it)
        losses.append(mean_across_ranks(loss.item(), device))
    return losses


def parse_run(description: str) -> RunConfig:
    parser = argparse.ArgumentParser(description=description)
    defaults = RunConfig()
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch", type=int, default=defaults.batch, help="global batch, split across ranks")
    parser.add_argument("--seq-len", type=int, default=defaults.seq_len)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args()
    return RunConfig(args.steps, args.batch, args.seq_len, args.lr, args.seed)


def setup() -> tuple[int, int, torch.device]:
    """Join the process group torchrun describes (env RANK, WORLD_SIZE, MASTER_ADDR, ...).

    With a GPU per process: NCCL, one GPU each (chosen by LOCAL_RANK). Otherwise CPU processes talking
    over gloo, as on a laptop or a one-GPU machine. The training code is the same either way.
    """
    if "RANK" not in os.environ:
        raise RuntimeError("RANK: not set; start this script with torchrun "
                           "(python -m torch.distributed.run --nproc_per_node=2 <script>)")
    torch.set_num_threads(1)  # one core per process: the ranks share the machine's cores
    local_rank, local_world = int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    if torch.cuda.is_available() and torch.cuda.device_count() >= local_world:
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size(), device


def teardown() -> None:
    """Wait for every rank, then leave: without the barrier FSDP2 sometimes aborts at shutdown."""
    dist.barrier()
    dist.destroy_process_group()


def mean_across_ranks(value: float, device: torch.device) -> float:
    """The average of a number over all ranks (each rank's loss is the mean over its share of the batch)."""
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item() / dist.get_world_size()


def local_numel(tensor: Tensor) -> int:
    """Elements this rank really stores: a sharded DTensor holds only its local shard."""
    to_local = getattr(tensor, "to_local", None)
    return (to_local() if to_local is not None else tensor).numel()


def held_per_rank(model: nn.Module, optimizer_state: list[Tensor], device: torch.device) -> list[dict]:
    """For every rank, how many parameter and optimizer-state elements it keeps in memory."""
    mine = torch.tensor([sum(local_numel(p) for p in model.parameters()),
                         sum(local_numel(t) for t in optimizer_state)], dtype=torch.long, device=device)
    everyone = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(everyone, mine)
    return [{"parameters": int(t[0]), "optimizer state": int(t[1])} for t in everyone]


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    """The tensors an optimizer keeps per parameter (AdamW: exp_avg, exp_avg_sq; the step count is skipped)."""
    return [t for state in optimizer.state.values() for name, t in state.items()
            if isinstance(t, Tensor) and name != "step"]


def model_sizes(run: RunConfig) -> dict:
    """What the communication formulas need: the parameter count Ψ of the whole model, the tokens of a
    global batch, the width, the layers and the bytes of one value (fp32)."""
    config = tiny_config()
    return {"n_params": sum(p.numel() for p in GPT(config).parameters()), "tokens": run.batch * run.seq_len,
            "d_model": config.d_model, "n_layers": config.n_layers, "bytes_per_value": 4}


def communication(counter: Counter, run: RunConfig, **sizes) -> dict:
    """Every rank's tallies of `counter`, gathered (call it on all ranks), with the sizes the formulas
    of `course_lib.distributed.collective_bytes` need. "communication" is rank 0's last step: later
    steps repeat it, while the first two can carry set-up traffic (DDP re-broadcasts its bucket order
    after step 0, the pipeline sends tensor shapes in step 0); "communication_steps" has them all."""
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, counter.steps)
    return {"communication": everyone[0][-1], "communication_steps": everyone[0],
            "communication_by_rank": [steps[-1] for steps in everyone],
            "sizes": {**model_sizes(run), "world": dist.get_world_size(), **sizes}}


def report(technique: str, run: RunConfig, losses: list[float], held: list[dict],
           device: torch.device | str = "cpu", extra: dict | None = None) -> None:
    """Rank 0 trains the single-process reference itself and prints both, plus one JSON line for `launch`
    (with `extra`, e.g. `communication(...)`, merged in)."""
    if dist.get_rank() != 0:
        return
    reference = train_single(run, device)
    difference = max(abs(a - b) for a, b in zip(losses, reference))
    result = {"technique": technique, "script": Path(sys.argv[0]).stem, "world_size": dist.get_world_size(),
              "losses": losses, "reference": reference, "max_difference": difference, "held": held,
              **(extra or {})}
    for step, (a, b) in enumerate(zip(losses, reference)):
        print(f"step {step}: loss {a:.6f}   single process {b:.6f}")
    print(f"{technique}: largest difference from single-process training {difference:.2e}", flush=True)
    print(REPORT_PREFIX + json.dumps(result), flush=True)
