"""ZeRO stage 1: data parallel, but each rank keeps the optimizer states (Adam's two moments) of only
its share of the parameters, updates that share, and broadcasts the new values to the other ranks.

    python -m torch.distributed.run --nproc_per_node=2 course_lib/distributed/zero1.py --steps 4
"""

import torch
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.nn.parallel import DistributedDataParallel as DDP

from course_lib.distributed import comm, common


def main() -> None:
    run = common.parse_run(__doc__.splitlines()[0])
    rank, world, device = common.setup()
    model = DDP(common.build_model(run.seed, device))
    optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.AdamW, lr=run.lr)
    counter = comm.Counter()  # DDP's all-reduce, then one broadcast per parameter from the rank that owns it
    losses = common.data_parallel_steps(model, optimizer, run, rank, world, device, counter)
    held = common.held_per_rank(model, common.optimizer_tensors(optimizer.optim), device)
    common.report("ZeRO-1", run, losses, held, device, common.communication(counter, run))
    common.teardown()


if __name__ == "__main__":
    main()
