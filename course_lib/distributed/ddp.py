"""Data parallel (DDP): every rank holds the whole model and trains on its own slice of the batch;
after backward, the gradients are averaged across ranks (all-reduce), so every copy takes the same step.

    python -m torch.distributed.run --nproc_per_node=2 course_lib/distributed/ddp.py --steps 4
"""

from torch.nn.parallel import DistributedDataParallel as DDP

from course_lib.distributed import comm, common


def main() -> None:
    run = common.parse_run(__doc__.splitlines()[0])
    rank, world, device = common.setup()
    model = DDP(common.build_model(run.seed, device))  # same seed: every rank starts from the same weights
    optimizer = common.make_optimizer(model.parameters(), run)
    counter = comm.Counter()  # counts the collectives of each step: one all-reduce per gradient bucket
    losses = common.data_parallel_steps(model, optimizer, run, rank, world, device, counter)
    held = common.held_per_rank(model, common.optimizer_tensors(optimizer), device)
    common.report("DDP", run, losses, held, device, common.communication(counter, run))
    common.teardown()


if __name__ == "__main__":
    main()
