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
  4. random rows: temperature, min-p, top-k/top-p (the ``top_k_top_p`` CustomOp), then an
     exponential race ``argmax(probs / E)``, E ~ Exp(1) drawn from the request's own generator
     when it has one, so a seeded request samples the same tokens in any batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from vllm.model_executor.layers.sampling_metadata import (  # noqa: F401  (re-exported)
    SamplingMetadata,
    SamplingRequestState,
    build_sampling_metadata,
)
from vllm.model_executor.layers.top_k_top_p import TopKTopP

_TINY = torch.finfo(torch.float32).tiny


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


def random_draw(probs: torch.Tensor, meta: SamplingMetadata) -> torch.Tensor:
    """Exponential race: argmax(probs / E), one Exp(1) vector per row from its generator."""
    e = torch.empty_like(probs)
    if len(meta.generators) < probs.shape[0]:
        e.exponential_()  # rows without a generator: the global RNG
    for row, gen in meta.generators.items():
        if gen.device == e.device:
            e[row].exponential_(generator=gen)
        else:  # e.g. a CPU generator for a GPU batch: same stream of draws, copied over
            e[row] = torch.empty(e.shape[-1], device=gen.device).exponential_(generator=gen)
    return (probs / e.clamp_(min=_TINY)).argmax(dim=-1)


class Sampler(nn.Module):
    """forward(logits [N, V], meta) -> SamplerOutput; rows follow ``meta``'s request order."""

    def __init__(self) -> None:
        super().__init__()
        self.top_k_top_p = TopKTopP()

    def forward(self, logits: torch.Tensor, meta: SamplingMetadata) -> SamplerOutput:
        if logits.shape[0] != meta.num_rows:
            raise ValueError(f"logits have {logits.shape[0]} rows but the sampling metadata "
                             f"describes {meta.num_rows} requests")
        logits = self.process_logits(logits, meta)
        logprobs = None
        if meta.max_num_logprobs is not None:
            logprobs = logits.log_softmax(dim=-1)  # [N, V]
        greedy = logits.argmax(dim=-1) if not meta.all_random else None
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
            logits.index_put_((rows, cols), torch.tensor(float("-inf"), device=logits.device))
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
        if meta.top_k is not None or meta.top_p is not None:
            logits = self.top_k_top_p(logits, meta.top_k, meta.top_p, meta.top_k_max)
        return random_draw(logits.softmax(dim=-1), meta)
