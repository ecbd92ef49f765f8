"""build_host_batch (vectorized, with a decode-only fast path) against a per-token reference."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vllm.sampling_params import SamplingParams
from vllm.worker.input_batch import CachedRequestState, build_host_batch


def _reference(states: list[CachedRequestState], sched: list[int], bs: int) -> dict[str, list]:
    ids, pos, slots, sample = [], [], [], []
    for st, n in zip(states, sched, strict=True):
        for p in range(st.num_computed_tokens, st.num_computed_tokens + n):
            ids.append(st.token_ids[p])
            pos.append(p)
            slots.append(st.block_ids[p // bs] * bs + p % bs)
        sample.append(st.num_computed_tokens + n >= len(st.token_ids))
    return {"input_ids": ids, "positions": pos, "slot_mapping": slots, "sample_mask": sample}


@pytest.mark.parametrize("decode_only", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_matches_reference(seed: int, decode_only: bool) -> None:
    rng = random.Random(seed)
    bs = rng.choice([1, 4, 16])
    states, sched = [], []
    for i in range(rng.randrange(1, 40)):
        n_tok = rng.randrange(1, 70)
        computed = n_tok - 1 if decode_only else rng.randrange(0, n_tok)
        n = 1 if decode_only else rng.randrange(1, n_tok - computed + 1)
        nblocks = -(-(computed + n) // bs) + rng.randrange(0, 2)
        toks = [rng.randrange(1000) for _ in range(n_tok)]
        split = rng.randrange(1, n_tok + 1)
        st = CachedRequestState(str(i), toks[:split], toks[split:], SamplingParams(),
                                rng.sample(range(5000), nblocks), computed)
        states.append(st)
        sched.append(n)
    hb = build_host_batch(states, sched, bs)
    ref = _reference(states, sched, bs)
    for name, want in ref.items():
        assert getattr(hb, name).tolist() == want, name
    for i, st in enumerate(states):
        assert hb.block_tables[i, : len(st.block_ids)].tolist() == st.block_ids
        assert not hb.block_tables[i, len(st.block_ids):].any()
    assert hb.seq_lens.tolist() == [s.num_computed_tokens + n for s, n in zip(states, sched, strict=True)]
    assert hb.query_start_loc.tolist() == [0, *np.cumsum(sched).tolist()]
