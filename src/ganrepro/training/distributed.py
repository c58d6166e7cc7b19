"""Data-parallel training under torchrun, and a one-process stand-in otherwise.

Gradients are averaged by hand after each phase's backward (one flattened all-reduce),
as StyleGAN2-ADA does, rather than through DistributedDataParallel: a step has several
forward passes with alternating frozen networks, which DDP's hooks handle poorly.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ganrepro import devices


@dataclass
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def average_gradients(self, module: torch.nn.Module) -> None:
        if self.world == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))


class StopAgreement:
    """All ranks stop after the same step. A signal may reach one rank only, or the ranks
    at different steps; a rank that stopped alone would leave the others waiting in the
    next all-reduce. Each step every rank adds its own stop flag to an asynchronous
    all-reduce (MAX) whose result it reads after the next step, so the decision costs no
    host sync per step and is the same on every rank."""

    def __init__(self, ctx: "Context", device: torch.device):
        self.ctx, self.device = ctx, device
        self.flag: torch.Tensor | None = None
        self.work = None

    def stop_now(self, local: bool) -> bool:
        """Give this rank's flag; True when all ranks must stop after this step."""
        if self.ctx.world == 1:
            return local
        agreed = False
        if self.work is not None:
            self.work.wait()
            agreed = bool(self.flag.item())
        if not agreed:
            self.flag = torch.tensor([float(local)], device=self.device)
            self.work = dist.all_reduce(self.flag, op=dist.ReduceOp.MAX, async_op=True)
        else:
            self.work = None
        return agreed

    def close(self) -> None:
        if self.work is not None:
            self.work.wait()
            self.work = None


@contextlib.contextmanager
def context():
    """The process group torchrun describes (WORLD_SIZE > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield Context()
        return
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(devices.process_device())     # a GPU no other process has claimed
    dist.init_process_group(backend)
    try:
        yield Context(rank, world, local_rank)
    finally:
        dist.destroy_process_group()
