"""Distributed data parallel training: the same code runs as one process or under ``torchrun``.

``torchrun --nproc_per_node N medseg train ...`` (or ``python -m torch.distributed.run``) sets
WORLD_SIZE, RANK and LOCAL_RANK; :func:`setup` then joins the process group: NCCL with one GPU per
process (cuda:LOCAL_RANK) or Gloo on the CPU.  Without those variables it is a world of one and
no process group is made.  Rank 0 alone validates and writes files; decisions it takes (stop,
learning rate) reach the other ranks through :func:`broadcast`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def env_world() -> tuple:
    """(world size, rank, local rank) from the torchrun environment, (1, 0, 0) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    return world, rank, int(os.environ.get("LOCAL_RANK", str(rank)) or rank)


def setup(device_name: str = "auto") -> Dist:
    """Pick the device and, under torchrun, join the process group."""
    from ..dnn.inference import resolve_device

    world, rank, local = env_world()
    device = resolve_device(device_name)
    if world <= 1:
        return Dist(0, 1, 0, device)
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        device = torch.device("cpu")                 # MPS has no collective backend
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local, device, owns)


def broadcast(ctx: Dist, values) -> list:
    """Rank 0's ``values`` (floats) on every rank."""
    if not ctx.enabled:
        return [float(v) for v in values]
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=ctx.device)
    dist.broadcast(t, 0)
    return t.cpu().tolist()


def mean(ctx: Dist, value: float) -> float:
    """Mean of ``value`` over all ranks."""
    if not ctx.enabled:
        return float(value)
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world


def barrier(ctx: Dist) -> None:
    if ctx.enabled:
        import torch.distributed as dist

        if ctx.device.type == "cuda":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def wrap(ctx: Dist, network: torch.nn.Module) -> torch.nn.Module:
    """``network`` wrapped in DistributedDataParallel when there is more than one rank."""
    if not ctx.enabled:
        return network
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(network, device_ids=ids, output_device=ids[0] if ids else None)


def cleanup(ctx: Dist) -> None:
    if ctx.owns_group:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
