"""Fully sharded data parallel (FSDP2, ZeRO stage 3): parameters, gradients and optimizer states are
all split across ranks; each block gathers its full weights just before it runs and frees them after,
and the gradients are reduce-scattered so each rank receives only its shard's average.

    python -m torch.distributed.run --nproc_per_node=2 course_lib/distributed/fsdp.py --steps 4
"""

from torch.distributed.fsdp import fully_shard

from course_lib.distributed import comm, common


def main() -> None:
    run = common.parse_run(__doc__.splitlines()[0])
    rank, world, device = common.setup()
    model = common.build_model(run.seed, device)
    # The root (embeddings, final norm, output layer) keeps its gathered weights from forward to backward
    # (FSDP2's default for the root), so backward re-gathers only the blocks' weights.
    kept = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("blocks."))
    for block in model.blocks:
        fully_shard(block)  # one all-gather per block, just in time
    fully_shard(model)  # the rest: embeddings, final norm, output layer
    optimizer = common.make_optimizer(model.parameters(), run)  # the parameters are now shards (DTensors)
    counter = comm.Counter()  # all-gathers (forward, and backward again) and reduce-scatters per step
    losses = common.data_parallel_steps(model, optimizer, run, rank, world, device, counter)
    held = common.held_per_rank(model, common.optimizer_tensors(optimizer), device)
    common.report("FSDP (ZeRO-3)", run, losses, held, device, common.communication(counter, run, n_params_kept=kept))
    common.teardown()


if __name__ == "__main__":
    main()
