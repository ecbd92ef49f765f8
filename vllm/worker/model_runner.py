"""Runs one flat batch per step: host-built inputs copied once, model forward, logits for the
sampling positions only, sampling on device. Device-neutral: no platform branches."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vllm.attention.backends.abstract import AttentionMetadata
from vllm.config import VllmConfig
from vllm.core.types import ModelRunnerOutput, SchedulerOutput, TokenLogprobs
from vllm.forward_context import set_forward_context
from vllm.logger import init_logger
from vllm.worker.graph_runner import DecodeGraphs, graph_sizes
from vllm.worker.input_batch import CachedRequestState, HostBatch, build_host_batch

logger = init_logger(__name__)


def logprobs_to_dicts(token_ids: torch.Tensor, logprobs: torch.Tensor, ranks: torch.Tensor,
                      num_top: list[int]) -> list[TokenLogprobs]:
    """Rows of (chosen token + top-K) tensors -> {token: (logprob, rank)} with num_top[i] entries
    of top-K per row besides the chosen token."""
    ids = token_ids.tolist()
    vals = logprobs.tolist()
    rks = ranks.tolist()
    out: list[TokenLogprobs] = []
    for i, k in enumerate(num_top):
        row = {ids[i][0]: (vals[i][0], int(rks[i]))}
        for j in range(1, k + 1):
            row.setdefault(ids[i][j], (vals[i][j], j))
        out.append(row)
    return out


@dataclass
class PendingStep:
    """A launched step: its output, minus the sampled tokens still on the device."""

    out: ModelRunnerOutput
    states: list[CachedRequestState] = field(default_factory=list)
    idx: list[int] = field(default_factory=list)  # rows of `states` that sample a token
    result: Any = None  # the SamplerOutput (device tensors), None when nothing samples


class ModelRunner:
    def __init__(self, vllm_config: VllmConfig, resolved: Any, device: torch.device) -> None:
        self.config = vllm_config
        self.resolved = resolved
        self.device = device
        self.dtype: torch.dtype = resolved.dtype
        self.vocab_size: int = resolved.vocab_size
        self.max_model_len: int = resolved.max_model_len
        self.max_num_reqs = vllm_config.scheduler.max_num_seqs
        self.max_num_tokens = int(vllm_config.scheduler.max_num_batched_tokens or 4096)
        self.requests: dict[str, CachedRequestState] = {}
        self._stashed_generators: dict[str, torch.Generator] = {}  # of preempted requests
        self.model: torch.nn.Module | None = None
        self.kv_caches: list[torch.Tensor] = []
        self.block_size = 0
        self.sampler: Any = None
        self.graphs: DecodeGraphs | None = None
        self._last_sampled: torch.Tensor | None = None  # the last launched step's sampled ids
        self._last_rows: dict[str, int] = {}  # request -> row of _last_sampled

    # ---- setup ------------------------------------------------------------------------
    def load_model(self) -> None:
        from vllm.model_executor.custom_op import set_custom_ops
        from vllm.model_executor.layers.sampler import Sampler
        from vllm.model_executor.model_loader import load_model

        set_custom_ops(self.config.compilation.custom_ops)
        self.model = load_model(self.resolved, self.device)
        self.sampler = Sampler()
        layers = self._attention_layers()
        if not layers:
            raise ValueError("the model has no Attention layers to bind a KV cache to")
        self.num_layers = len(layers)
        self.num_kv_heads = layers[0].num_kv_heads
        self.head_size = layers[0].head_size
        from vllm.attention.selector import get_attn_backend

        self.attn_backend = get_attn_backend(self.head_size, self.dtype)
        self.block_size = self.config.cache.block_size or self.attn_backend.default_block_size()
        self._alloc_buffers()

    def _attention_layers(self) -> list[Any]:
        from vllm.attention.layer import Attention

        assert self.model is not None
        return [m for m in self.model.modules() if isinstance(m, Attention)]

    def _alloc_buffers(self) -> None:
        dev, t, r = self.device, self.max_num_tokens, self.max_num_reqs
        self.max_blocks_per_req = -(-self.max_model_len // self.block_size)
        self.input_ids_buf = torch.zeros(t, dtype=torch.int64, device=dev)
        self.positions_buf = torch.zeros(t, dtype=torch.int64, device=dev)
        self.slot_mapping_buf = torch.zeros(t, dtype=torch.int64, device=dev)
        self.qsl_buf = torch.zeros(r + 1, dtype=torch.int32, device=dev)
        self.seq_lens_buf = torch.zeros(r, dtype=torch.int32, device=dev)
        self.block_table_buf = torch.zeros(r * self.max_blocks_per_req, dtype=torch.int32, device=dev)

    def kv_bytes_per_block(self) -> int:
        elem = torch.empty(0, dtype=self.dtype).element_size()
        return 2 * self.num_layers * self.block_size * self.num_kv_heads * self.head_size * elem

    def initialize_kv_cache(self, num_blocks: int) -> None:
        from vllm.attention.layer import bind_kv_cache

        shape = self.attn_backend.get_kv_cache_shape(
            num_blocks, self.block_size, self.num_kv_heads, self.head_size
        )
        self.kv_caches = [
            torch.empty(shape, dtype=self.dtype, device=self.device) for _ in range(self.num_layers)
        ]
        # Host-RAM caches (platforms that size the KV cache from RAM) are fresh mmap'd pages,
        # zero already, and zeroing GiBs by hand costs seconds of start-up; device memory may hold
        # stale NaN patterns, so it is cleared (backends mask positions past seq_lens anyway).
        from vllm.platforms import current_platform

        if not current_platform.kv_cache_in_host_memory:
            for cache in self.kv_caches:
                cache.zero_()
        assert self.model is not None
        bind_kv_cache(self.model, self.kv_caches)
        self.warm_up()
        self.capture_graphs()

    @torch.inference_mode()
    def warm_up(self) -> None:
        """One small prefill-plus-decode forward through the paged path, so kernels compiled
        on first use (Triton's) compile at start-up rather than inside the first request. Every
        slot is -1 (nothing is written) and the block table points at block 0."""
        assert self.model is not None
        n = min(16, self.max_num_tokens - 1, self.max_model_len)
        if n < 2:
            return
        dev = self.device
        q_lens = torch.tensor([n, 1], dtype=torch.int32)
        qsl = torch.tensor([0, n, n + 1], dtype=torch.int32)
        meta = AttentionMetadata(
            num_actual_tokens=n + 1, max_query_len=n, max_seq_len=n,
            query_start_loc=qsl.to(dev), seq_lens=q_lens.to(dev),
            block_tables=torch.zeros(2, -(-n // self.block_size), dtype=torch.int32, device=dev),
            slot_mapping=torch.full((n + 1,), -1, dtype=torch.int64, device=dev),
            query_start_loc_cpu=qsl, seq_lens_cpu=q_lens,
        )
        positions = torch.cat([torch.arange(n), torch.zeros(1, dtype=torch.int64)]).to(dev)
        with set_forward_context(meta):
            hidden = self.model(torch.zeros(n + 1, dtype=torch.int64, device=dev), positions)
        self._warm_up_sampler(hidden[-2:])

    def _warm_up_sampler(self, hidden: torch.Tensor) -> None:
        """Logits, a greedy and a top-k/top-p row through the sampler, and the read-back: their
        first-use costs (lazy kernel loading, pinned host buffers) land before serving."""
        from vllm.model_executor.layers.logits_processor import reuse_logits_buffer
        from vllm.model_executor.layers.sampler import SamplingRequestState, build_sampling_metadata
        from vllm.sampling_params import SamplingParams

        assert self.model is not None
        # The random row draws from its own generator: the global one, which requests without a
        # seed use, must start serving exactly as the configured seed left it.
        gen = torch.Generator(device=self.device)
        gen.manual_seed(0)
        rows = [SamplingRequestState(SamplingParams(temperature=0.0, max_tokens=1), [0], [], None),
                SamplingRequestState(SamplingParams(temperature=1.0, top_p=0.9, top_k=8, max_tokens=1),
                                     [0], [], gen)]
        # plain greedy (argmax in the model's dtype), then greedy + random
        for n in range(1, min(2, hidden.shape[0]) + 1):
            meta = build_sampling_metadata(rows[:n], self.vocab_size, self.device)
            with reuse_logits_buffer(keep_dtype=meta.plain_greedy):
                result = self.sampler(self.model.compute_logits(hidden[-n:]), meta)
            self._copy_result_to_host(result)()  # the read-back path of every step

    def capture_graphs(self) -> None:
        """Capture decode graphs per batch-size bucket, unless eager mode is asked for, the
        platform has no graphs, or a layer's kernel cannot be captured (``graph_safe = False``)."""
        from vllm.platforms import current_platform

        comp = self.config.compilation
        assert self.model is not None
        if comp.enforce_eager or not current_platform.supports_graphs():
            return
        unsafe = [type(m).__name__ for m in self.model.modules() if getattr(m, "graph_safe", True) is False]
        if unsafe:
            logger.warning("decode runs eagerly: %s cannot be captured in a device graph", unsafe[0])
            return
        sizes = graph_sizes(comp.cuda_graph_sizes, self.max_num_reqs, self.max_num_tokens)
        if not sizes:
            return
        start = time.perf_counter()
        bufs = {"input_ids": self.input_ids_buf, "positions": self.positions_buf,
                "slot_mapping": self.slot_mapping_buf, "seq_lens": self.seq_lens_buf}
        graphs = DecodeGraphs(self.model, sizes, bufs, self.max_blocks_per_req, self.max_model_len,
                              self.attn_backend.decode_context_buckets())
        graphs.capture_all(current_platform)
        self.graphs = graphs
        logger.info("captured %d decode graphs (batch sizes %d..%d, context buckets %s) in %.1f s",
                    len(graphs.graphs), sizes[0], sizes[-1], graphs.hints,
                    time.perf_counter() - start)

    @torch.inference_mode()
    def profile_run(self) -> None:
        """One max-size forward without a KV cache (attention sees one causal sequence)."""
        assert self.model is not None
        n = min(self.max_num_tokens, self.max_model_len)
        ids = torch.zeros(n, dtype=torch.int64, device=self.device)
        pos = torch.arange(n, dtype=torch.int64, device=self.device)
        with set_forward_context(None):
            hidden = self.model(ids, pos)
        self.model.compute_logits(hidden[-min(n, self.max_num_reqs):])

    # ---- per step ---------------------------------------------------------------------
    def _update_states(self, so: SchedulerOutput) -> None:
        for rid in so.finished_req_ids:
            st = self.requests.pop(rid, None)
            if rid in so.preempted_req_ids:
                if st is not None and st.generator is not None:
                    self._stashed_generators[rid] = st.generator
            else:
                self._stashed_generators.pop(rid, None)
        for new in so.new_reqs:
            params = new.sampling_params
            gen = self._stashed_generators.pop(new.req_id, None)
            if gen is None and params.seed is not None:
                gen = torch.Generator(device=self.device)
                gen.manual_seed(params.seed)
            self.requests[new.req_id] = CachedRequestState(
                new.req_id, list(new.prompt_token_ids), list(new.output_token_ids), params,
                list(new.block_ids), new.num_computed_tokens, gen, new.eos_token_id,
            )
        for c in so.cached_reqs:
            st = self.requests[c.req_id]
            st.block_ids.extend(c.new_block_ids)
            st.num_computed_tokens = c.num_computed_tokens

    def _to_device(self, hb: HostBatch, graph: bool = False
                   ) -> tuple[AttentionMetadata | None, torch.Tensor, torch.Tensor]:
        """Copy the flat batch into the persistent device buffers. ``graph``: a decode graph
        replays this step, reading input_ids, positions, seq_lens and slot_mapping from these
        buffers and keeping its own query_start_loc and block table, so no metadata is built."""
        t, s = hb.num_tokens, len(hb.req_ids)
        w = hb.block_tables.shape[1]

        def put(buf: torch.Tensor, arr: np.ndarray) -> torch.Tensor:
            view = buf[: arr.size]
            view.copy_(torch.from_numpy(arr.reshape(-1)), non_blocking=True)
            return view

        input_ids = put(self.input_ids_buf, hb.input_ids)
        positions = put(self.positions_buf, hb.positions)
        seq_lens = put(self.seq_lens_buf, hb.seq_lens)
        slot_mapping = put(self.slot_mapping_buf, hb.slot_mapping)
        if graph:
            return None, input_ids, positions
        meta = AttentionMetadata(
            num_actual_tokens=t,
            max_query_len=int((hb.query_start_loc[1:] - hb.query_start_loc[:-1]).max()),
            max_seq_len=int(hb.seq_lens.max()),
            query_start_loc=put(self.qsl_buf, hb.query_start_loc),
            seq_lens=seq_lens,
            block_tables=put(self.block_table_buf, hb.block_tables).view(s, w),
            slot_mapping=slot_mapping,
            query_start_loc_cpu=torch.from_numpy(hb.query_start_loc),
            seq_lens_cpu=torch.from_numpy(hb.seq_lens),
        )
        return meta, input_ids, positions

    @torch.inference_mode()
    def execute_model(self, so: SchedulerOutput) -> ModelRunnerOutput:
        return self.finish_step(self.begin_step(so))

    @torch.inference_mode()
    def begin_step(self, so: SchedulerOutput) -> PendingStep:
        """Build the inputs, launch the forward and the sampler; nothing waits on the device.
        ``finish_step`` reads the sampled ids back (the step's one synchronisation)."""
        self._update_states(so)
        if so.total_num_scheduled_tokens == 0:
            return PendingStep(ModelRunnerOutput())
        assert self.model is not None
        states = [self.requests[rid] for rid in so.num_scheduled_tokens]
        hb = build_host_batch(states, list(so.num_scheduled_tokens.values()), self.block_size)
        bucket = None
        if self.graphs is not None and hb.num_tokens == len(states):  # decodes only
            bucket = self.graphs.bucket(len(states))
        meta, input_ids, positions = self._to_device(hb, graph=bucket is not None)
        if hb.pending_rows.size:
            self._feed_pending(hb)
        if bucket is not None:
            assert self.graphs is not None
            hidden = self.graphs.run(bucket, len(states), hb.block_tables,
                                     int(hb.seq_lens.max()))  # [S, H]
        else:
            with set_forward_context(meta):
                hidden = self.model(input_ids, positions)  # [T, H]

        out = ModelRunnerOutput(
            req_ids=hb.req_ids,
            sampled_token_ids=[[] for _ in states],
            logprobs=[None] * len(states),
        )
        self._prompt_logprobs(states, hb, hidden, out)
        pending = PendingStep(out, states)
        sample_idx = np.nonzero(hb.sample_mask)[0]
        if sample_idx.size:
            pending.idx, result = self._sample(states, hb, hidden, sample_idx)
            self._last_sampled = result.sampled_token_ids  # [N] device, read by _feed_pending
            self._last_rows = {states[i].req_id: j for j, i in enumerate(pending.idx)}
            for i in pending.idx:
                states[i].num_pending += 1
            pending.result = self._copy_result_to_host(result)
        return pending

    def finish_step(self, pending: PendingStep) -> ModelRunnerOutput:
        """Wait for this step's sampled ids (not for any step launched after it)."""
        if pending.result is not None:
            self._collect_samples(pending.states, pending.idx, pending.result(), pending.out)
        return pending.out

    def _feed_pending(self, hb: HostBatch) -> None:
        """The last query token of each pending row is the previous step's sampled token,
        still on the device: gather it into the input buffer (stream-ordered, no host wait)."""
        rows = hb.pending_rows
        dst = hb.query_start_loc[rows + 1].astype(np.int64) - 1  # [P] flat token index
        src = np.fromiter((self._last_rows[hb.req_ids[r]] for r in rows), np.int64, rows.size)
        idx = torch.from_numpy(np.concatenate([dst, src])).to(self.device, non_blocking=True)
        ids = self._last_sampled.index_select(0, idx[rows.size:])  # [P]
        self.input_ids_buf.index_copy_(0, idx[: rows.size], ids)

    @staticmethod
    def _copy_result_to_host(result: Any) -> Any:
        """Start the device->host copy of the sampler output; returns a callable that waits for
        it alone and gives the output with host tensors."""
        from vllm.platforms import current_platform

        lp = result.logprobs
        tensors = [result.sampled_token_ids]
        if lp is not None:
            tensors += [lp.token_ids, lp.logprobs, lp.ranks]
        wait = current_platform.copy_to_host_async(tensors)

        def host_result() -> Any:
            host = wait()
            if lp is None:
                return type(result)(host[0], None)
            return type(result)(host[0], type(lp)(host[1], host[2], host[3]))

        return host_result

    def _sample(self, states: list[CachedRequestState], hb: HostBatch, hidden: torch.Tensor,
                sample_idx: np.ndarray) -> tuple[list[int], Any]:
        """Logits of the sampling positions and one sampler call, launched without waiting:
        returns (batch rows sampled, SamplerOutput on the device)."""
        from vllm.model_executor.layers.logits_processor import reuse_logits_buffer
        from vllm.model_executor.layers.sampler import SamplingRequestState, build_sampling_metadata

        idx = sample_idx.tolist()
        if len(idx) == hb.num_tokens:  # every token ends its request's query (decodes): no gather
            h = hidden[: len(idx)]  # [N, H]
        else:
            from vllm.model_executor.layers.sampling_metadata import to_device_async

            rows = torch.from_numpy(hb.query_start_loc[1:][sample_idx].astype(np.int64) - 1)
            h = hidden[to_device_async(rows, self.device)]  # [N, H]
        sampling: list[Any] = []
        for i in idx:
            st = states[i]
            if st.sampling_state is None:
                st.sampling_state = SamplingRequestState(
                    st.sampling_params, st.prompt_token_ids, st.output_token_ids, st.generator,
                    st.eos_token_id,
                )
            sampling.append(st.sampling_state)
        meta = build_sampling_metadata(sampling, self.vocab_size, self.device)
        # The [N, V] logits are consumed before the next step; fp32 unless only argmaxed.
        with reuse_logits_buffer(keep_dtype=meta.plain_greedy):
            result = self.sampler(self.model.compute_logits(h), meta)  # logits [N, V]
        return idx, result

    @staticmethod
    def _collect_samples(states: list[CachedRequestState], idx: list[int], result: Any,
                         out: ModelRunnerOutput) -> None:
        """One device->host copy of the sampled ids (the only synchronisation of the step)."""
        sampled: list[int] = result.sampled_token_ids.tolist()
        if result.logprobs is None:
            for i, tok in zip(idx, sampled, strict=True):
                states[i].append(tok)
                out.sampled_token_ids[i] = [tok]
            return
        tops = [states[i].sampling_params.logprobs or 0 for i in idx]
        lp = result.logprobs
        lp_rows = logprobs_to_dicts(lp.token_ids, lp.logprobs, lp.ranks, tops)
        for j, i in enumerate(idx):
            tok = sampled[j]
            states[i].append(tok)
            out.sampled_token_ids[i] = [tok]
            if states[i].sampling_params.logprobs is not None:
                out.logprobs[i] = [lp_rows[j]]

    def _prompt_logprobs(self, states: list[CachedRequestState], hb: HostBatch,
                         hidden: torch.Tensor, out: ModelRunnerOutput) -> None:
        """Logprobs of prompt tokens for requests that asked (positions computed this step)."""
        for i, st in enumerate(states):
            k = st.sampling_params.prompt_logprobs
            if k is None or st.output_token_ids:
                continue
            start = int(hb.num_computed[i])
            prompt_len = len(st.prompt_token_ids)
            if start >= prompt_len:
                continue
            from vllm.model_executor.layers.sampler import compute_prompt_logprobs

            q0 = int(hb.query_start_loc[i])
            n = int(hb.query_start_loc[i + 1]) - q0
            # Position p predicts prompt token p+1; the last prompt position predicts no prompt token.
            m = min(n, prompt_len - 1 - start)
            rows: list[TokenLogprobs | None] = [None] if start == 0 else []
            if m > 0:
                logits = self.model.compute_logits(hidden[q0 : q0 + m])  # [m, V]
                target = torch.tensor(st.prompt_token_ids[start + 1 : start + 1 + m],
                                      dtype=torch.int64, device=self.device)
                lp = compute_prompt_logprobs(logits, target, k)
                rows.extend(logprobs_to_dicts(lp.token_ids, lp.logprobs, lp.ranks, [k] * m))
            out.prompt_logprobs[st.req_id] = rows
