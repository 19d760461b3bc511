"""Tensor parallel (Megatron-style): every weight matrix of a block is split across ranks. q, k, v and
the feed-forward's first layer are split by output columns (each rank computes its own heads and its
own slice of the hidden layer); the attention output and the feed-forward's second layer are split by
input rows, and their partial results are summed across ranks (one all-reduce per sub-layer); in
backward, the gradient of each sub-layer's input is summed the same way. Every rank sees the whole batch.

    python -m torch.distributed.run --nproc_per_node=2 course_lib/distributed/tensor_parallel.py --steps 4
"""

from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Replicate
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    PrepareModuleInput,
    RowwiseParallel,
    parallelize_module,
)

from course_lib.distributed import comm, common


def main() -> None:
    run = common.parse_run(__doc__.splitlines()[0])
    rank, world, device = common.setup()
    mesh = init_device_mesh(device.type, (world,))
    model = common.build_model(run.seed, device)
    if model.config.n_heads % world:
        raise ValueError(f"world size: the {model.config.n_heads} heads must split evenly over {world} ranks")
    plan = {  # q, k, v share one replicated copy of the attention's input: backward adds their three partial
              # input-gradients, then all-reduces once (Megatron's "f" operator), not once per projection
            "attn": PrepareModuleInput(input_layouts=Replicate(), desired_input_layouts=Replicate(),
                                       use_local_output=False),
            "attn.q_proj": ColwiseParallel(), "attn.k_proj": ColwiseParallel(), "attn.v_proj": ColwiseParallel(),
            "attn.out_proj": RowwiseParallel(), "ff.up": ColwiseParallel(), "ff.down": RowwiseParallel()}
    for block in model.blocks:
        parallelize_module(block, mesh, plan)
        # q, k, v now give each rank only its own heads' columns: the attention reshapes them into
        # n_heads // world heads (attention.MultiHeadAttention reads n_heads for that), then out_proj sums the ranks
        block.attn.n_heads //= world
    optimizer = common.make_optimizer(model.parameters(), run)
    counter = comm.Counter()  # all-reduces of activations (forward) and of their gradients (backward)
    losses = []
    for ids, targets in common.batches(run):
        with counter.step():
            loss = common.loss_fn(model(ids.to(device)), targets.to(device))  # the whole batch on every rank
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        losses.append(loss.item())  # identical on every rank
    held = common.held_per_rank(model, common.optimizer_tensors(optimizer), device)
    common.report("tensor parallel", run, losses, held, device, common.communication(counter, run))
    common.teardown()


if __name__ == "__main__":
    main()
