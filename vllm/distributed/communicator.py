"""Collectives of one tensor-parallel group, one class per torch.distributed backend.

The platform names its backend (``current_platform.dist_backend``: nccl on CUDA and ROCm, where
torch's "nccl" is RCCL, gloo on CPU, xccl on XPU) and ``create_communicator`` picks the class.
All of them are thin over torch.distributed: no home-made collective library. The classes differ
only in which tensors they accept (device-resident for nccl/xccl, host for gloo) so that a
tensor on the wrong device fails with a clear error instead of a backend crash.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.distributed as dist


class Communicator:
    """all_reduce (sum), all_gather, gather and broadcast within ``group``."""

    backend: ClassVar[str] = ""
    # torch device types whose tensors this backend's collectives take directly.
    device_types: ClassVar[tuple[str, ...]] = ()

    def __init__(self, group: dist.ProcessGroup, rank: int, world_size: int) -> None:
        self.group = group
        self.rank = rank  # rank within the group
        self.world_size = world_size
        self.global_ranks = dist.get_process_group_ranks(group)

    def _check(self, x: torch.Tensor, op: str) -> torch.Tensor:
        if x.device.type not in self.device_types:
            raise ValueError(
                f"{self.backend} {op}: tensor is on {x.device}, but this backend takes tensors "
                f"on {' or '.join(self.device_types)}"
            )
        return x if x.is_contiguous() else x.contiguous()

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of ``x`` over ranks; in place when ``x`` is contiguous (the result is returned)."""
        if self.world_size == 1:
            return x
        y = self._check(x, "all_reduce")
        dist.all_reduce(y, group=self.group)
        return y

    def all_gather(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """Every rank's ``x`` concatenated along ``dim`` (rank order); same on every rank."""
        if self.world_size == 1:
            return x
        x = self._check(x, "all_gather")
        parts = [torch.empty_like(x) for _ in range(self.world_size)]  # W x [*x.shape]
        dist.all_gather(parts, x, group=self.group)
        return torch.cat(parts, dim=dim)

    def gather(self, x: torch.Tensor, dst: int = 0, dim: int = -1) -> torch.Tensor | None:
        """Every rank's ``x`` concatenated along ``dim`` on group rank ``dst``; None elsewhere."""
        if self.world_size == 1:
            return x
        x = self._check(x, "gather")
        parts = [torch.empty_like(x) for _ in range(self.world_size)] if self.rank == dst else None
        dist.gather(x, parts, dst=self.global_ranks[dst], group=self.group)
        return torch.cat(parts, dim=dim) if parts is not None else None

    def broadcast(self, x: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Group rank ``src``'s ``x`` on every rank (written into ``x`` in place)."""
        if self.world_size == 1:
            return x
        if not x.is_contiguous():
            raise ValueError("broadcast writes in place: the tensor must be contiguous")
        self._check(x, "broadcast")
        dist.broadcast(x, src=self.global_ranks[src], group=self.group)
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, world_size={self.world_size})"


class NcclCommunicator(Communicator):
    """CUDA (NCCL) and ROCm (RCCL, which torch also calls "nccl")."""

    backend = "nccl"
    device_types = ("cuda",)


class GlooCommunicator(Communicator):
    """CPU."""

    backend = "gloo"
    device_types = ("cpu",)


class XcclCommunicator(Communicator):
    """Intel GPUs (torch's xccl backend, oneCCL underneath)."""

    backend = "xccl"
    device_types = ("xpu",)


COMMUNICATORS: dict[str, type[Communicator]] = {
    c.backend: c for c in (NcclCommunicator, GlooCommunicator, XcclCommunicator)
}


def create_communicator(
    backend: str, group: dist.ProcessGroup, rank: int, world_size: int
) -> Communicator:
    cls = COMMUNICATORS.get(backend)
    if cls is None:
        raise ValueError(
            f"distributed backend {backend!r} has no communicator; one of {sorted(COMMUNICATORS)}"
        )
    return cls(group, rank, world_size)
