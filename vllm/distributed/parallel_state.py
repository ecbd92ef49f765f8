"""Tensor-parallel process group state. With no group initialised everything is rank 0 of 1 and the
collectives are identities, so single-device code needs no special cases."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class _TPGroup:
    rank: int = 0
    world_size: int = 1
    group: dist.ProcessGroup | None = None


_TP = _TPGroup()


def init_tensor_parallel(rank: int, world_size: int, backend: str, init_method: str) -> None:
    """Join the default process group and use all of it as the tensor-parallel group."""
    global _TP
    if world_size == 1:
        _TP = _TPGroup()
        return
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size)
    _TP = _TPGroup(rank, world_size, dist.group.WORLD)


def destroy_tensor_parallel() -> None:
    global _TP
    if dist.is_initialized():
        dist.destroy_process_group()
    _TP = _TPGroup()


def get_tp_rank() -> int:
    return _TP.rank


def get_tp_size() -> int:
    return _TP.world_size


def tp_all_reduce(x: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (in place where possible); identity at TP=1."""
    if _TP.world_size == 1:
        return x
    dist.all_reduce(x, group=_TP.group)
    return x


def tp_all_gather(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Concatenate every rank's ``x`` along ``dim``; identity at TP=1."""
    if _TP.world_size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(_TP.world_size)]
    dist.all_gather(parts, x.contiguous(), group=_TP.group)
    return torch.cat(parts, dim=dim)
