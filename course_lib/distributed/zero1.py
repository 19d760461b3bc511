"""ZeRO stage 1: data parallel, but each rank keeps the optimizer states (Adam's two moments) of only
its share of the parameters, updates that share, and broadcasts the new values to the other ranks.

    python -m torch.distributed.run --nproc_per_node=2 course_lib/distributed/zero1.py --steps 4
"""

import torch
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.nn.parallel import DistributedDataParallel as DDP

from course_lib.distributed import common


def main() -> None:
    run = common.parse_run(__doc__.splitlines()[0])
    rank, world, device = common.setup()
    if run.batch % world:
        raise ValueError(f"--batch: expected a multiple of the {world} ranks, got {run.batch}")
    model = DDP(common.build_model(run.seed, device))
    optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.AdamW, lr=run.lr)
    share = run.batch // world
    losses = []
    for ids, targets in common.batches(run):
        mine = slice(rank * share, (rank + 1) * share)
        loss = common.loss_fn(model(ids[mine].to(device)), targets[mine].to(device))
        optimizer.zero_grad()
        loss.backward()  # gradients averaged by DDP, as in plain data parallel
        optimizer.step()  # each rank updates its own parameters' share, then they are broadcast
        losses.append(common.mean_across_ranks(loss.item(), device))
    held = common.held_per_rank(model, common.optimizer_tensors(optimizer.optim), device)
    common.report("ZeRO-1", run, losses, held, device)
    common.teardown()


if __name__ == "__main__":
    main()
