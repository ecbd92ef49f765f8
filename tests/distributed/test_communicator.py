"""The gloo communicator and the parallel_state wrappers, on 2 spawned CPU ranks."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as tmp

from vllm.distributed import parallel_state as ps
from vllm.distributed.communicator import (
    COMMUNICATORS,
    GlooCommunicator,
    NcclCommunicator,
    XcclCommunicator,
    create_communicator,
)
from vllm.distributed.utils import get_open_port, tcp_init_method


def _rank_main(rank: int, port: int, out: dict) -> None:
    ps.init_tensor_parallel(rank, 2, "gloo", tcp_init_method("127.0.0.1", port))
    try:
        assert (ps.get_tp_rank(), ps.get_tp_size()) == (rank, 2)
        assert isinstance(ps.get_tp_communicator(), GlooCommunicator)
        x = torch.arange(6, dtype=torch.float32).view(2, 3) + 10 * rank  # [2, 3]
        res = {
            "all_reduce": ps.tp_all_reduce(x.clone()),
            "all_gather_last": ps.tp_all_gather(x, dim=-1),
            "all_gather_0": ps.tp_all_gather(x.t(), dim=0),  # non-contiguous input
            "gather": ps.tp_gather(x, dst=1, dim=0),
            "broadcast": ps.tp_broadcast(x.clone(), src=1),
        }
        out[rank] = res
    finally:
        ps.destroy_tensor_parallel()


def test_gloo_collectives_two_ranks() -> None:
    manager = tmp.get_context("spawn").Manager()
    out = manager.dict()
    tmp.spawn(_rank_main, args=(get_open_port(), out), nprocs=2, join=True)
    x0 = torch.arange(6, dtype=torch.float32).view(2, 3)
    x1 = x0 + 10
    for rank in (0, 1):
        r = out[rank]
        torch.testing.assert_close(r["all_reduce"], x0 + x1)
        torch.testing.assert_close(r["all_gather_last"], torch.cat([x0, x1], dim=-1))
        torch.testing.assert_close(r["all_gather_0"], torch.cat([x0.t(), x1.t()], dim=0))
        torch.testing.assert_close(r["broadcast"], x1)
    assert out[0]["gather"] is None
    torch.testing.assert_close(out[1]["gather"], torch.cat([x0, x1], dim=0))


def test_single_rank_is_identity() -> None:
    assert (ps.get_tp_rank(), ps.get_tp_size()) == (0, 1)
    assert ps.get_tp_communicator() is None
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    for fn in (ps.tp_all_reduce, ps.tp_all_gather, ps.tp_gather, ps.tp_broadcast):
        assert fn(x) is x


def test_backend_table_matches_platforms() -> None:
    from vllm.platforms.cpu import CpuPlatform
    from vllm.platforms.cuda import CudaPlatform
    from vllm.platforms.xpu import XpuPlatform

    assert COMMUNICATORS[CpuPlatform.dist_backend] is GlooCommunicator
    assert COMMUNICATORS[CudaPlatform.dist_backend] is NcclCommunicator
    assert COMMUNICATORS[XpuPlatform.dist_backend] is XcclCommunicator
    with pytest.raises(ValueError, match="'mpi'.*gloo"):
        create_communicator("mpi", None, 0, 2)  # type: ignore[arg-type]
