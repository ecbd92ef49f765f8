"""The sampler: processed logits -> one token per row, plus optional top-N logprobs.

Order of stages (each skipped when no row needs it):
  1. logit_bias, then min_tokens (stop ids -> -inf while a request is under min_tokens);
  2. penalties as OpenAI/vLLM define them: repetition over prompt + output tokens (positive
     logits divided, negative multiplied), frequency (x count) and presence (x seen) over the
     output tokens only;
  -> logprobs are taken here: log_softmax of these *processed* logits (after bias/min_tokens/
     penalties, before temperature and truncation), so they describe the model's adjusted
     distribution independently of the sampling knobs;
  3. greedy rows: argmax;
  4. random rows: temperature, min-p, top-k/top-p (the ``top_k_top_p`` CustomOp; when every
     row has top-k, directly on the k_max largest logits of each row), then one
     draw from each row's distribution by inverting its CDF with a uniform number drawn from
     the request's own generator when it has one, so a seeded request samples the same tokens
     in any batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from vllm.model_executor.custom_op import CustomOp
from vllm.model_executor.layers.sampling_metadata import (  # noqa: F401  (re-exported)
    SamplingMetadata,
    SamplingRequestState,
    build_sampling_metadata,
)
from vllm.model_executor.layers.top_k_top_p import TopKTopP, top_k_top_p_sparse


@dataclass
class LogprobsTensors:
    token_ids: torch.Tensor  # int64 [N, K+1]; column 0 = the sampled (or target) token
    logprobs: torch.Tensor  # fp32 [N, K+1]
    ranks: torch.Tensor  # int64 [N]: 1 + number of tokens strictly more likely than column 0


@dataclass
class SamplerOutput:
    sampled_token_ids: torch.Tensor  # int64 [N] (device)
    logprobs: LogprobsTensors | None


def gather_logprobs(logprobs: torch.Tensor, token_ids: torch.Tensor, k: int) -> LogprobsTensors:
    """logprobs fp32 [N, V], token_ids int64 [N] -> chosen token + top-k, with its rank."""
    chosen = logprobs.gather(-1, token_ids[:, None])  # [N, 1]
    ranks = (logprobs > chosen).sum(-1) + 1
    if k > 0:
        top_vals, top_ids = logprobs.topk(k, dim=-1)
        ids = torch.cat([token_ids[:, None], top_ids], dim=-1)
        vals = torch.cat([chosen, top_vals], dim=-1)
    else:
        ids, vals = token_ids[:, None], chosen
    return LogprobsTensors(ids.to(torch.int64), vals.float(), ranks.to(torch.int64))


def compute_prompt_logprobs(logits: torch.Tensor, target_ids: torch.Tensor, k: int
                            ) -> LogprobsTensors:
    """logits [P, V] predicting target_ids [P] (the next prompt tokens): raw log_softmax."""
    logprobs = logits.float().log_softmax(dim=-1)
    return gather_logprobs(logprobs, target_ids.to(torch.int64), min(k, logits.shape[-1]))


def apply_penalties(logits: torch.Tensor, meta: SamplingMetadata) -> torch.Tensor:
    """In place on fp32 logits [N, V] (see the module docstring for the definitions)."""
    n, vocab = logits.shape
    assert meta.output_token_ids is not None
    counts = torch.zeros(n, vocab + 1, dtype=torch.float32, device=logits.device)
    counts.scatter_add_(1, meta.output_token_ids, torch.ones_like(meta.output_token_ids,
                                                                   dtype=torch.float32))
    counts = counts[:, :vocab]  # [N, V]: times each token was generated (pad bin dropped)
    seen_out = counts > 0
    if meta.repetition_penalty is not None:
        assert meta.prompt_token_ids is not None
        seen = torch.zeros(n, vocab + 1, dtype=torch.bool, device=logits.device)
        seen.scatter_(1, meta.prompt_token_ids, True)
        seen = seen[:, :vocab] | seen_out
        rep = meta.repetition_penalty[:, None]
        penalized = torch.where(logits > 0, logits / rep, logits * rep)
        logits = torch.where(seen, penalized, logits)
    assert meta.frequency_penalty is not None and meta.presence_penalty is not None
    logits = logits - meta.frequency_penalty[:, None] * counts
    return logits - meta.presence_penalty[:, None] * seen_out.float()


def random_draw(probs: torch.Tensor, generators: dict[int, torch.Generator], n: int
                ) -> torch.Tensor:
    """One categorical draw per row of ``probs`` [n, V] (weights: rows need not sum to 1) by
    inverting its CDF with one uniform number per row.

    ``u`` comes from the request's own generator when it has one (else the global RNG), so a
    seeded request samples the same tokens in any batch. One random number per row instead of
    one per vocabulary entry: on CPUs, drawing [N, V] exponentials cost ~20x the whole rest of
    the sampler. The pick is the first token whose cumulative mass exceeds ``u * total``; the
    target stays below the total, so a zero-probability token is never chosen.
    """
    u = torch.empty(n, 1, dtype=torch.float32, device=probs.device)  # fp32: fp64-less devices
    if len(generators) < n:
        u.uniform_()  # rows without a generator: the global RNG
    for row, gen in generators.items():
        if gen.device == u.device:
            u[row].uniform_(generator=gen)
        else:  # e.g. a CPU generator for a GPU batch: same stream of draws, copied over
            u[row] = torch.rand(1, dtype=torch.float32, generator=gen, device=gen.device)
    cdf = probs.cumsum(dim=-1)  # [N, V] fp32: rounding moves ~1e-7 of mass between neighbours
    total = cdf[:, -1:]  # [N, 1]
    below_total = torch.nextafter(total, torch.zeros_like(total))
    target = torch.minimum(u.to(cdf.dtype) * total, below_total)  # [N, 1], < total
    return torch.searchsorted(cdf, target, right=True).squeeze(-1).clamp_(max=probs.shape[-1] - 1)


def blocked_argmax(x: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """``x.argmax(-1)`` for [N, V] (first maximum; NaN counts as the maximum) in two cheap
    passes: ``amax`` over blocks of ``block`` columns (a vectorised reduction), then argmax
    within the winning block. torch's CPU argmax is a scalar loop: ~9x slower on [64, 49152]."""
    n, v = x.shape
    if v <= 2 * block:
        return x.argmax(dim=-1)
    main = v - v % block
    blocks = x[:, :main].view(n, main // block, block)  # [N, B, C]
    bmax = blocks.amax(dim=-1)  # [N, B]
    best = bmax.argmax(dim=-1)  # [N]: the first block holding the row's maximum
    rows = torch.arange(n, device=x.device)
    idx = best * block + blocks[rows, best].argmax(dim=-1)  # [N]
    if main == v:
        return idx
    tail_max, tail_arg = x[:, main:].max(dim=-1)  # the last, partial block
    head_max = bmax[rows, best]
    tail_wins = (tail_max > head_max) | (tail_max.isnan() & ~head_max.isnan())
    return torch.where(tail_wins, tail_arg + main, idx)


@CustomOp.register("greedy_argmax")
class GreedyArgmax(CustomOp):
    """forward(logits [N, V]) -> int64 [N]: the first index of each row's maximum."""

    def forward_native(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(dim=-1)

    def forward_cpu(self, logits: torch.Tensor) -> torch.Tensor:
        return blocked_argmax(logits)


class Sampler(nn.Module):
    """forward(logits [N, V], meta) -> SamplerOutput; rows follow ``meta``'s request order."""

    def __init__(self) -> None:
        super().__init__()
        self.top_k_top_p = TopKTopP()
        self.argmax = GreedyArgmax()

    def forward(self, logits: torch.Tensor, meta: SamplingMetadata) -> SamplerOutput:
        if logits.shape[0] != meta.num_rows:
            raise ValueError(f"logits have {logits.shape[0]} rows but the sampling metadata "
                             f"describes {meta.num_rows} requests")
        if meta.plain_greedy:  # argmax is exact in any dtype: no fp32 copy of [N, V]
            return SamplerOutput(sampled_token_ids=self.argmax(logits[:, :meta.vocab_size]),
                                 logprobs=None)
        logits = self.process_logits(logits, meta)
        logprobs = None
        if meta.max_num_logprobs is not None:
            logprobs = logits.log_softmax(dim=-1)  # [N, V]
        greedy = self.argmax(logits) if not meta.all_random else None
        if meta.all_greedy:
            sampled = greedy
        else:
            sampled = self.sample_random(logits, meta)
            if greedy is not None:
                assert meta.greedy_mask is not None
                sampled = torch.where(meta.greedy_mask, greedy, sampled)
        assert sampled is not None
        sampled = sampled.to(torch.int64)
        lp = None
        if logprobs is not None:
            assert meta.max_num_logprobs is not None
            lp = gather_logprobs(logprobs, sampled, min(meta.max_num_logprobs, logits.shape[-1]))
        return SamplerOutput(sampled_token_ids=sampled, logprobs=lp)

    @staticmethod
    def process_logits(logits: torch.Tensor, meta: SamplingMetadata) -> torch.Tensor:
        """fp32 logits with vocab padding, bias, min_tokens and penalties applied. The caller's
        tensor is never modified: it is copied only when an in-place stage needs to write."""
        # Padded lm_head columns (past vocab_size) are not tokens: drop them.
        writes = meta.logit_bias is not None or meta.min_tokens_mask is not None
        logits = logits[:, :meta.vocab_size].to(torch.float32, copy=writes)  # [N, V]
        if meta.logit_bias is not None:
            rows, cols, vals = meta.logit_bias
            logits.index_put_((rows, cols), vals, accumulate=True)
        if meta.min_tokens_mask is not None:
            rows, cols = meta.min_tokens_mask
            logits[rows, cols] = float("-inf")  # a wrapped scalar: no host->device copy
        if meta.output_token_ids is not None:
            logits = apply_penalties(logits, meta)
        return logits

    def sample_random(self, logits: torch.Tensor, meta: SamplingMetadata) -> torch.Tensor:
        assert meta.temperature is not None
        logits = logits / meta.temperature[:, None]
        if meta.min_p is not None:
            probs = logits.softmax(dim=-1)
            max_p = probs.amax(dim=-1, keepdim=True)
            logits = logits.masked_fill(probs < meta.min_p[:, None] * max_p, float("-inf"))
        if meta.top_k_rows_all:  # every row samples among its own top-k candidates
            return self._sample_top_k_rows(logits, meta.top_k, meta.top_p, meta.generators,
                                           meta.top_k_rows_max)
        if meta.top_k_split is None:
            return self._sample_full_rows(logits, meta.top_k, meta.top_p, meta.top_k_max,
                                          meta.generators)
        # Both kinds of rows: each group separately, so that which path a row takes (and how
        # many numbers its generator gives) depends only on its own parameters.
        out = torch.empty(logits.shape[0], dtype=torch.int64, device=logits.device)
        (k_host, k_rows), (f_host, f_rows) = meta.top_k_split
        k_args = _subset(logits, meta, k_host, k_rows)
        assert k_args[1] is not None
        out.index_copy_(0, k_rows, self._sample_top_k_rows(*k_args, meta.top_k_rows_max))
        f_logits, _, f_p, f_gens = _subset(logits, meta, f_host, f_rows)
        out.index_copy_(0, f_rows, self._sample_full_rows(f_logits, None, f_p, None, f_gens))
        return out

    def _sample_full_rows(self, logits: torch.Tensor, k: torch.Tensor | None,
                          p: torch.Tensor | None, k_max: int | None,
                          generators: dict[int, torch.Generator]) -> torch.Tensor:
        if k is not None or p is not None:
            logits = self.top_k_top_p(logits, k, p, k_max)
        return random_draw(logits.softmax(dim=-1), generators, logits.shape[0])

    @staticmethod
    def _sample_top_k_rows(logits: torch.Tensor, k: torch.Tensor, p: torch.Tensor | None,
                           generators: dict[int, torch.Generator], k_max: int) -> torch.Tensor:
        """Rows with their own top-k: the kept set lies among the row's k largest logits, so
        filter and draw on [M, k_max] candidates (no [M, V] softmax, sort or scatter). The
        result does not depend on k_max (unnormalised weights, running sums)."""
        vals, ids, _ = top_k_top_p_sparse(logits, k, p, k_max, k_max)  # [M, K]
        weights = (vals - vals[:, :1]).exp()  # [M, K]; the draw scales by each row's total
        # Walk the CDF in token-id order, as the full-vocabulary path does: then a tiny change
        # of the logits (another TP size, another kernel) that reorders two candidates does not
        # change which token a given uniform number picks.
        ids, order = ids.sort(dim=-1)
        pick = random_draw(weights.gather(-1, order), generators, logits.shape[0])  # [M] in [0, K)
        return ids.gather(-1, pick[:, None]).squeeze(-1)


def _subset(logits: torch.Tensor, meta: SamplingMetadata, host_rows: list[int], rows: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None,
                       dict[int, torch.Generator]]:
    """(logits, top_k, top_p, generators) of the given rows, renumbered from 0."""
    k = meta.top_k.index_select(0, rows) if meta.top_k is not None else None
    p = meta.top_p.index_select(0, rows) if meta.top_p is not None else None
    gens = {j: meta.generators[r] for j, r in enumerate(host_rows) if r in meta.generators}
    return logits.index_select(0, rows), k, p, gens
