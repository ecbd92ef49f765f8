"""Runner-side request state and the flat-batch input builder (numpy on host, no per-token
Python loops)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vllm.sampling_params import SamplingParams


@dataclass
class CachedRequestState:
    req_id: str
    prompt_token_ids: list[int]
    output_token_ids: list[int]
    sampling_params: SamplingParams
    block_ids: list[int]
    num_computed_tokens: int
    generator: torch.Generator | None = None
    eos_token_id: int | None = None
    token_ids: list[int] = field(default_factory=list)  # prompt + outputs
    sampling_state: Any = None  # the sampler's per-request state (built lazily)
    # Sampled tokens of launched steps not yet read back (0 or 1): the next step's input for
    # this request is then taken from the device (ModelRunner._feed_pending).
    num_pending: int = 0

    def __post_init__(self) -> None:
        self.token_ids = self.prompt_token_ids + self.output_token_ids

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    def append(self, token_id: int) -> None:
        """A sampled token read back from the device (it was pending until now)."""
        self.token_ids.append(token_id)
        self.output_token_ids.append(token_id)
        if self.num_pending:
            self.num_pending -= 1


@dataclass
class HostBatch:
    """One step's flat batch on the host (S sequences, T tokens)."""

    req_ids: list[str]
    input_ids: np.ndarray  # int64 [T]
    positions: np.ndarray  # int64 [T]
    query_start_loc: np.ndarray  # int32 [S+1]
    seq_lens: np.ndarray  # int32 [S]
    block_tables: np.ndarray  # int32 [S, max_blocks]
    slot_mapping: np.ndarray  # int64 [T]
    sample_mask: np.ndarray  # bool [S]: the step reaches the end of the known tokens
    num_computed: np.ndarray  # int64 [S] tokens already in the cache before this step
    # Rows whose last query token is a pending sampled token (its input_ids entry is a
    # placeholder 0 filled on the device from the previous step's sampler output).
    pending_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def num_tokens(self) -> int:
        return int(self.input_ids.shape[0])


def build_host_batch(
    states: list[CachedRequestState], num_scheduled: list[int], block_size: int
) -> HostBatch:
    num_reqs = len(states)
    n_sched = np.asarray(num_scheduled, dtype=np.int64)  # [S]
    computed = np.fromiter((s.num_computed_tokens for s in states), np.int64, num_reqs)  # [S]
    pending = np.fromiter((s.num_pending for s in states), np.int64, num_reqs)  # [S]
    num_tokens = np.fromiter((len(s.token_ids) for s in states), np.int64, num_reqs) + pending
    cu = np.zeros(num_reqs + 1, dtype=np.int64)
    np.cumsum(n_sched, out=cu[1:])
    total = int(cu[-1])

    if total == num_reqs and bool((computed + 1 == num_tokens).all()):
        # decodes only: each request feeds its last token (0 where it is still pending)
        input_ids = np.fromiter((0 if s.num_pending else s.token_ids[-1] for s in states),
                                np.int64, num_reqs)  # [T]
    else:
        ids: list[int] = []
        for st, start, n in zip(states, computed.tolist(), num_scheduled, strict=True):
            ids.extend(st.token_ids[start : start + n])
            ids.extend([0] * (start + n - len(st.token_ids)))  # the pending token, if scheduled
        input_ids = np.asarray(ids, dtype=np.int64)  # [T]

    # position of token t = computed[req(t)] + (t - cu[req(t)])
    positions = np.repeat(computed - cu[:-1], n_sched) + np.arange(total, dtype=np.int64)  # [T]
    seq_lens = computed + n_sched  # [S]

    # Block tables: all rows' ids flattened in one pass, scattered under a [S, W] mask.
    lens = np.fromiter((len(s.block_ids) for s in states), np.int64, num_reqs)  # [S]
    max_blocks = int(lens.max())
    flat = np.fromiter(itertools.chain.from_iterable(s.block_ids for s in states), np.int32,
                       int(lens.sum()))
    block_tables = np.zeros((num_reqs, max_blocks), dtype=np.int32)  # [S, W]
    block_tables[np.arange(max_blocks)[None, :] < lens[:, None]] = flat
    req_idx = np.repeat(np.arange(num_reqs), n_sched)  # [T]
    blocks = block_tables[req_idx, positions // block_size].astype(np.int64)  # [T]
    slot_mapping = blocks * block_size + positions % block_size  # [T]

    return HostBatch(
        req_ids=[s.req_id for s in states],
        input_ids=input_ids,
        positions=positions,
        query_start_loc=cu.astype(np.int32),
        seq_lens=seq_lens.astype(np.int32),
        block_tables=block_tables,
        slot_mapping=slot_mapping,
        sample_mask=seq_lens >= num_tokens,
        num_computed=computed,
        pending_rows=np.nonzero(pending)[0],
    )
