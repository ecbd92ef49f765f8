"""Real tensor parallelism: 2 gloo ranks in 2 processes produce the single-process logits.

gloo moves CPU tensors, so the ranks always run on the CPU platform (``VLLM_PLATFORM=cpu`` in
their environment); the single-process reference runs on the current platform's device."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp

from tests.models.utils import load_our_model, our_logits

IDS = [3, 17, 42, 99, 5, 250, 7, 61]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, model_dir: str, out: dict) -> None:  # type: ignore[type-arg]
    from vllm.distributed.parallel_state import destroy_tensor_parallel, init_tensor_parallel

    torch.set_num_threads(1)
    init_tensor_parallel(rank, world, "gloo", f"tcp://127.0.0.1:{port}")
    try:
        model = load_our_model(model_dir)
        out[rank] = our_logits(model, IDS)
    finally:
        destroy_tensor_parallel()


@pytest.mark.parametrize("arch", ["llama", "gpt2", "qwen3_moe"])
def test_tp2_matches_single_process(arch: str, make_tiny,  # type: ignore[no-untyped-def]
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = make_tiny(arch)
    expected = our_logits(load_our_model(model_dir), IDS)  # [T, vocab] on the CPU
    monkeypatch.setenv("VLLM_PLATFORM", "cpu")  # inherited by the spawned ranks
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_rank_main, args=(2, _free_port(), model_dir, out), nprocs=2, join=True)
        results = dict(out)
    for rank in range(2):
        torch.testing.assert_close(results[rank], expected, atol=1e-4, rtol=0)
