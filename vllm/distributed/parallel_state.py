"""Tensor-parallel process group state. With no group initialised everything is rank 0 of 1 and the
collectives are identities, so single-device code needs no special cases.

Model code uses ``get_tp_rank()/get_tp_size()`` and ``tp_all_reduce/tp_all_gather`` (plus
``tp_gather/tp_broadcast``); they go through the group's ``Communicator``, which the platform's
``dist_backend`` chose (nccl, gloo or xccl).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from vllm.distributed.communicator import Communicator, create_communicator


@dataclass
class _TPGroup:
    rank: int = 0
    world_size: int = 1
    group: dist.ProcessGroup | None = None
    comm: Communicator | None = None


_TP = _TPGroup()


def init_tensor_parallel(
    rank: int, world_size: int, backend: str, init_method: str, timeout_s: float | None = None
) -> None:
    """Join the default process group and use all of it as the tensor-parallel group.

    ``init_method`` is ``tcp://HOST:PORT`` of rank 0 (every rank must pass the same one)."""
    global _TP
    if world_size == 1:
        _TP = _TPGroup()
        return
    if not 0 <= rank < world_size:
        raise ValueError(f"rank={rank} is outside 0..{world_size - 1} (world_size={world_size})")
    if not dist.is_initialized():
        kwargs = {"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}
        dist.init_process_group(
            backend, init_method=init_method, rank=rank, world_size=world_size, **kwargs
        )
    elif dist.get_world_size() != world_size:
        raise ValueError(
            f"torch.distributed is already initialised with world_size={dist.get_world_size()}, "
            f"but tensor_parallel_size={world_size}"
        )
    group = dist.group.WORLD
    assert group is not None
    _TP = _TPGroup(rank, world_size, group, create_communicator(backend, group, rank, world_size))


def destroy_tensor_parallel() -> None:
    global _TP
    if dist.is_initialized():
        dist.destroy_process_group()
    _TP = _TPGroup()


def get_tp_rank() -> int:
    return _TP.rank


def get_tp_size() -> int:
    return _TP.world_size


def get_tp_communicator() -> Communicator | None:
    """The group's communicator; None at TP=1."""
    return _TP.comm


def tp_all_reduce(x: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (in place where possible); identity at TP=1."""
    if _TP.comm is None:
        return x
    return _TP.comm.all_reduce(x)


def tp_all_gather(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Concatenate every rank's ``x`` along ``dim``; identity at TP=1."""
    if _TP.comm is None:
        return x
    return _TP.comm.all_gather(x, dim=dim)


def tp_gather(x: torch.Tensor, dst: int = 0, dim: int = -1) -> torch.Tensor | None:
    """Concatenation along ``dim`` on rank ``dst`` only (None on the others); identity at TP=1."""
    if _TP.comm is None:
        return x
    return _TP.comm.gather(x, dst=dst, dim=dim)


def tp_broadcast(x: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Rank ``src``'s ``x`` on every rank (in place); identity at TP=1."""
    if _TP.comm is None:
        return x
    return _TP.comm.broadcast(x, src=src)
