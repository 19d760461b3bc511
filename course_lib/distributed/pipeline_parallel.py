"""Pipeline parallel (GPipe): the layers are split into stages, one per rank: rank 0 runs the
embeddings and the first half of the blocks, rank 1 the second half, the final norm and the output
layer. The batch is cut into micro-batches that flow through the stages one after the other (all
forwards, then all backwards), so both ranks are busy at once except while the pipe fills and drains.

    python -m torch.distributed.run --nproc_per_node=2 course_lib/distributed/pipeline_parallel.py --steps 4
"""

import torch
from torch import nn
from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

from course_lib.distributed import comm, common

MICRO_BATCHES = 4


class FirstStage(nn.Module):
    """Token and position embeddings, then the first blocks: ids → hidden vectors."""

    def __init__(self, model, blocks):
        super().__init__()
        self.tok_emb, self.pos_emb, self.blocks = model.tok_emb, model.pos_emb, nn.ModuleList(blocks)

    def forward(self, ids):
        x = self.tok_emb(ids) + self.pos_emb(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        return x


class LastStage(nn.Module):
    """The remaining blocks, the final norm and the output layer: hidden vectors → logits."""

    def __init__(self, model, blocks):
        super().__init__()
        self.blocks, self.norm, self.lm_head = nn.ModuleList(blocks), model.norm, model.lm_head

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.norm(x))


def main() -> None:
    run = common.parse_run(__doc__.splitlines()[0])
    rank, world, device = common.setup()
    if world != 2:
        raise ValueError(f"world size: this script splits the model into 2 stages, got {world} ranks")
    if run.batch % MICRO_BATCHES:
        raise ValueError(f"--batch: expected a multiple of {MICRO_BATCHES} micro-batches, got {run.batch}")
    model = common.build_model(run.seed, device)  # every rank builds it all, then keeps its own stage
    half = len(model.blocks) // 2
    stage_module = FirstStage(model, model.blocks[:half]) if rank == 0 else LastStage(model, model.blocks[half:])
    del model
    stage = PipelineStage(stage_module, stage_index=rank, num_stages=world, device=device)
    schedule = ScheduleGPipe(stage, n_microbatches=MICRO_BATCHES, loss_fn=common.loss_fn)  # grads averaged
    optimizer = common.make_optimizer(stage_module.parameters(), run)
    counter = comm.Counter()  # sends and receives of activations and of their gradients
    losses = []
    for ids, targets in common.batches(run):
        with counter.step():
            optimizer.zero_grad()
            if rank == 0:
                schedule.step(ids.to(device))  # sends activations forward, receives their gradients back
                loss = torch.zeros(1, device=device)
            else:
                micro_losses = []
                schedule.step(target=targets.to(device), losses=micro_losses)
                loss = torch.stack(micro_losses).mean().reshape(1)  # equal micro-batches: mean = batch mean
            optimizer.step()
        torch.distributed.broadcast(loss, src=world - 1)  # only the last stage knows the loss
        losses.append(loss.item())
    held = common.held_per_rank(stage_module, common.optimizer_tensors(optimizer), device)
    common.report("pipeline parallel", run, losses, held, device,
                  common.communication(counter, run, micro_batches=MICRO_BATCHES))
    common.teardown()


if __name__ == "__main__":
    main()
