"""Decode graphs: bucket choice, and greedy outputs identical with and without graphs.

On a platform with device graphs (CUDA/ROCm) the real graphs are captured; elsewhere a stand-in
graph that re-runs the recorded forward exercises the same persistent buffers and padding."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from vllm import LLM, SamplingParams
from vllm.worker.graph_runner import DecodeGraphs, graph_sizes

PROMPTS = [[5, 17, 99, 3], list(range(10, 40)), [7] * 17]
GREEDY = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)


class ReRunGraph:
    """Stand-in for a device graph: replay re-runs the forward into the captured output."""

    def capture(self, fn: Any) -> torch.Tensor:
        self.fn = fn
        self.out = fn()
        return self.out

    def replay(self) -> None:
        self.out.copy_(self.fn())


def test_graph_sizes() -> None:
    assert graph_sizes((1, 2, 4, 8, 16), 256, 8192) == [1, 2, 4, 8, 16]
    assert graph_sizes((1, 2, 4, 8, 16), 6, 8192) == [1, 2, 4, 6]
    assert graph_sizes((1, 2, 4, 8, 16), 256, 3) == [1, 2, 3]
    assert graph_sizes((), 8, 8) == []


@pytest.fixture
def graphs_on(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Real device graphs where the platform has them, the re-run stand-in elsewhere; returns a
    list that grows by the bucket size at every replay."""
    from vllm.platforms import current_platform

    if not current_platform.supports_graphs():
        monkeypatch.setattr(current_platform, "supports_graphs", lambda: True)
        monkeypatch.setattr(current_platform, "new_graph", lambda pool: ReRunGraph())
    replays: list[int] = []
    real_run = DecodeGraphs.run

    def counting_run(self: DecodeGraphs, b: int, n: int, block_tables: Any,
                     max_seq_len: int) -> torch.Tensor:
        replays.append(b)
        return real_run(self, b, n, block_tables, max_seq_len)

    monkeypatch.setattr(DecodeGraphs, "run", counting_run)
    return replays


def test_graphs_match_eager(tiny_llama_dir: str, graphs_on: list[int]) -> None:
    kw: dict[str, Any] = dict(model=tiny_llama_dir, kv_cache_space_gib=0.02, seed=0,
                              max_num_seqs=8, gpu_memory_utilization=0.3)
    eager = LLM(enforce_eager=True, **kw)
    want = [o.outputs[0].token_ids for o in eager.generate(PROMPTS, GREEDY, use_tqdm=False)]
    eager.llm_engine.shutdown()
    assert not graphs_on

    llm = LLM(cuda_graph_sizes=(1, 2, 4, 8), **kw)
    runner = llm.llm_engine.core.executor.worker.runner  # type: ignore[attr-defined]
    assert runner.graphs is not None and runner.graphs.sizes == [1, 2, 4, 8]
    got = [o.outputs[0].token_ids for o in llm.generate(PROMPTS, GREEDY, use_tqdm=False)]
    # 3 decodes pad to the 4-graph; the prompts' different lengths finish together, so every
    # decode step ran from a graph.
    assert graphs_on and set(graphs_on) == {4}
    assert got == want
    # one request at a time: bucket 1, same tokens as in the batch
    single = llm.generate(PROMPTS[1:2], GREEDY, use_tqdm=False)[0].outputs[0].token_ids
    assert single == want[1] and graphs_on[-1] == 1
    llm.llm_engine.shutdown()



def test_context_buckets(tiny_llama_dir: str, graphs_on: list[int],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend whose decode kernel depends on the context length gets one graph per bucket;
    steps replay the smallest bucket holding their longest context, with eager's tokens."""
    from vllm.attention.backends.abstract import AttentionBackend

    kw: dict[str, Any] = dict(model=tiny_llama_dir, kv_cache_space_gib=0.02, seed=0,
                              max_num_seqs=8, gpu_memory_utilization=0.3, enforce_eager=True)
    eager = LLM(**kw)
    want = [o.outputs[0].token_ids for o in eager.generate(PROMPTS, GREEDY, use_tqdm=False)]
    eager.llm_engine.shutdown()
    monkeypatch.setattr(AttentionBackend, "decode_context_buckets", staticmethod(lambda: (32,)))
    hints: list[int] = []
    real_run = DecodeGraphs.run

    def recording_run(self: DecodeGraphs, b: int, n: int, bt: Any, max_seq_len: int) -> torch.Tensor:
        hints.append(self.hints[0] if max_seq_len <= self.hints[0] else self.hints[-1])
        return real_run(self, b, n, bt, max_seq_len)

    monkeypatch.setattr(DecodeGraphs, "run", recording_run)
    kw["enforce_eager"] = False
    llm = LLM(cuda_graph_sizes=(1, 2, 4), **kw)
    graphs = llm.llm_engine.core.executor.worker.runner.graphs  # type: ignore[attr-defined]
    if not isinstance(graphs, DecodeGraphs) or 32 not in graphs.hints:
        llm.llm_engine.shutdown()
        pytest.skip("this backend declares its own context buckets")
    assert set(graphs.graphs) == {(b, h) for b in (1, 2, 4) for h in graphs.hints}
    got = [o.outputs[0].token_ids for o in llm.generate(PROMPTS, GREEDY, use_tqdm=False)]
    assert got == want
    assert set(hints) == {32, graphs.hints[-1]}  # short contexts first, then past 32 tokens
    llm.llm_engine.shutdown()
