"""Decode steps replayed from captured device graphs (CUDA/HIP graphs), one per batch-size bucket.

A pure-decode step (every sequence schedules one token) with ``num_seqs`` sequences is padded to
the smallest captured size ``B >= num_seqs`` and replayed from persistent device buffers:

- ``input_ids``/``positions``/``slot_mapping`` ``[B]``: padding tokens get slot -1 (the KV
  write skips them);
- ``seq_lens`` ``[B]``: padding sequences get 1 (every backend accepts it; they read one
  finite cached slot through a stale or zero block-table row, and their output is dropped);
- ``query_start_loc`` ``[B+1]`` = ``arange``: one query token per sequence;
- ``block_tables`` ``[B_max, max_blocks_per_req]``: only the used columns are copied each step.

The graph itself comes from the platform (``Platform.new_graph``), so this file, like the rest of
the runner, never names the hardware.
"""

from __future__ import annotations

import bisect
from typing import Any, Protocol

import numpy as np
import torch

from vllm.attention.backends.abstract import AttentionMetadata
from vllm.forward_context import set_forward_context
from vllm.logger import init_logger

logger = init_logger(__name__)


class DeviceGraph(Protocol):
    """What a platform's graph object does: record ``fn`` once, then re-run the recording."""

    def capture(self, fn: Any) -> torch.Tensor: ...

    def replay(self) -> None: ...


class DecodeGraphs:
    """Captured decode forwards keyed by padded batch size."""

    def __init__(self, model: torch.nn.Module, sizes: list[int], bufs: dict[str, torch.Tensor],
                 max_blocks_per_req: int, max_seq_len_hint: int,
                 context_buckets: tuple[int, ...] = ()) -> None:
        """``bufs``: the runner's persistent device buffers ``input_ids``, ``positions``,
        ``slot_mapping`` (length >= max size) and ``seq_lens``; the runner fills their first
        ``n`` entries each step as usual and the graphs read them in place.
        ``context_buckets``: the attention backend's ``decode_context_buckets()``; each size is
        captured once per bucket below ``max_seq_len_hint`` and once for any context."""
        self.model = model
        self.sizes = sorted(set(sizes))
        self.max_seq_len_hint = max_seq_len_hint
        self.hints = sorted({h for h in context_buckets if 0 < h < max_seq_len_hint}
                            | {max_seq_len_hint})
        b = self.max_size
        self.input_ids = bufs["input_ids"]
        self.positions = bufs["positions"]
        self.slot_mapping = bufs["slot_mapping"]
        self.seq_lens = bufs["seq_lens"]
        dev = self.input_ids.device
        self.query_start_loc = torch.arange(b + 1, dtype=torch.int32, device=dev)
        self.block_tables = torch.zeros(b, max_blocks_per_req, dtype=torch.int32, device=dev)
        # Keyed by (size, context hint): the attention metadata's max_seq_len at capture.
        self.graphs: dict[tuple[int, int], DeviceGraph] = {}
        self.outputs: dict[tuple[int, int], torch.Tensor] = {}  # [B, hidden] per replay

    @property
    def max_size(self) -> int:
        return self.sizes[-1] if self.sizes else 0

    def bucket(self, num_seqs: int) -> int | None:
        """The captured size a batch of ``num_seqs`` decodes pads to (None: run eagerly)."""
        i = bisect.bisect_left(self.sizes, num_seqs)
        captured = i < len(self.sizes) and (self.sizes[i], self.max_seq_len_hint) in self.graphs
        return self.sizes[i] if captured else None

    def _metadata(self, b: int, hint: int) -> AttentionMetadata:
        host_qsl = torch.arange(b + 1, dtype=torch.int32)
        return AttentionMetadata(
            num_actual_tokens=b,
            max_query_len=1,
            max_seq_len=hint,
            query_start_loc=self.query_start_loc[: b + 1],
            seq_lens=self.seq_lens[:b],
            block_tables=self.block_tables[:b],
            slot_mapping=self.slot_mapping[:b],
            query_start_loc_cpu=host_qsl,
            seq_lens_cpu=torch.zeros(b, dtype=torch.int32),
        )

    @torch.inference_mode()
    def capture_all(self, platform: Any) -> None:
        """Capture every size, largest first: the smaller graphs reuse the memory of the
        largest through one pool (``platform.graph_pool()``)."""
        self._clear_padding(0)
        pool = platform.graph_pool()
        for b in reversed(self.sizes):
            for hint in self.hints:
                meta = self._metadata(b, hint)

                def forward(b: int = b, meta: AttentionMetadata = meta) -> torch.Tensor:
                    with set_forward_context(meta):
                        return self.model(self.input_ids[:b], self.positions[:b])

                graph = platform.new_graph(pool)
                self.outputs[b, hint] = graph.capture(forward)
                self.graphs[b, hint] = graph

    def _clear_padding(self, n: int) -> None:
        b = self.max_size
        if n < b:
            self.slot_mapping[n:b].fill_(-1)
            self.seq_lens[n:b].fill_(1)

    def run(self, b: int, n: int, block_tables: np.ndarray, max_seq_len: int) -> torch.Tensor:
        """Replay size ``b`` for the ``n`` decodes whose inputs are in the first n entries of the
        buffers, with the graph of the smallest context bucket holding ``max_seq_len``;
        ``block_tables``: host ``[n, w]``. Returns hidden ``[n, H]``."""
        self._clear_padding(n)
        w = block_tables.shape[1]
        self.block_tables[:n, :w].copy_(torch.from_numpy(block_tables), non_blocking=True)
        hint = self.hints[min(bisect.bisect_left(self.hints, max_seq_len), len(self.hints) - 1)]
        self.graphs[b, hint].replay()
        return self.outputs[b, hint][:n]


def graph_sizes(configured: tuple[int, ...], max_num_seqs: int, max_num_tokens: int) -> list[int]:
    """Configured sizes that a decode batch can reach (at most max_num_seqs, max_num_tokens)."""
    limit = min(max_num_seqs, max_num_tokens)
    sizes = sorted({s for s in configured if 1 <= s <= limit})
    if sizes and sizes[-1] < limit and limit <= max(configured, default=0):
        sizes.append(limit)  # so every decode batch up to max_num_seqs has a bucket
    return sizes
