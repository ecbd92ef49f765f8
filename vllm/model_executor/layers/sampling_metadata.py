"""Per-step sampling metadata: every request's parameters as batched device tensors.

Built once per step on the host (one transfer per tensor) so that the sampler itself runs
without per-request host synchronisation. A stage no request needs is left as None and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vllm.sampling_params import SamplingParams


@dataclass
class SamplingRequestState:
    """What the runner knows per request (one row of the logits)."""

    params: SamplingParams
    prompt_token_ids: list[int]
    output_token_ids: list[int]
    generator: torch.Generator | None  # per-request, seeded from params.seed; owned by caller
    eos_token_id: int | None = None  # masked (with stop_token_ids) until min_tokens are out


@dataclass
class SamplingMetadata:
    num_rows: int
    vocab_size: int
    all_greedy: bool
    all_random: bool
    temperature: torch.Tensor | None  # fp32 [N]; greedy rows hold 1.0 (None: all greedy)
    greedy_mask: torch.Tensor | None  # bool [N] (None unless mixed)
    top_k: torch.Tensor | None  # int64 [N], 0 = off
    top_k_max: int | None  # largest effective k (host int) when top-k is used
    top_p: torch.Tensor | None  # fp32 [N]
    min_p: torch.Tensor | None  # fp32 [N]
    # Penalties (None when no request uses any penalty).
    presence_penalty: torch.Tensor | None  # fp32 [N]
    frequency_penalty: torch.Tensor | None  # fp32 [N]
    repetition_penalty: torch.Tensor | None  # fp32 [N]
    prompt_token_ids: torch.Tensor | None  # int64 [N, Lp], padded with vocab_size
    output_token_ids: torch.Tensor | None  # int64 [N, Lo], padded with vocab_size
    # Sparse per-(row, token) edits: (rows int64 [M], cols int64 [M]) (+ values fp32 [M]).
    logit_bias: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None
    min_tokens_mask: tuple[torch.Tensor, torch.Tensor] | None
    max_num_logprobs: int | None  # largest `logprobs` requested (None: nobody wants them)
    generators: dict[int, torch.Generator] = field(default_factory=dict)  # row -> generator


def _pad(rows: list[list[int]], pad: int, device: torch.device) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0)
    data = [r + [pad] * (width - len(r)) for r in rows]
    return torch.tensor(data, dtype=torch.int64).view(len(rows), width).to(device)


def _sparse(pairs: list[tuple[int, int, float]], device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    if not pairs:
        return None
    rows, cols, vals = zip(*pairs, strict=True)
    return (torch.tensor(rows, dtype=torch.int64, device=device),
            torch.tensor(cols, dtype=torch.int64, device=device),
            torch.tensor(vals, dtype=torch.float32, device=device))


def _min_tokens_pairs(states: list[SamplingRequestState], vocab_size: int
                      ) -> list[tuple[int, int, float]]:
    pairs = []
    for i, s in enumerate(states):
        if len(s.output_token_ids) >= s.params.min_tokens:
            continue
        stop_ids = set(s.params.stop_token_ids)
        if s.eos_token_id is not None and not s.params.ignore_eos:
            stop_ids.add(s.eos_token_id)
        pairs += [(i, t, 0.0) for t in sorted(stop_ids) if 0 <= t < vocab_size]
    return pairs


def _bias_pairs(states: list[SamplingRequestState], vocab_size: int
                ) -> list[tuple[int, int, float]]:
    pairs = []
    for i, s in enumerate(states):
        for tok, bias in (s.params.logit_bias or {}).items():
            tok = int(tok)
            if not 0 <= tok < vocab_size:
                raise ValueError(f"logit_bias token id {tok} is outside the vocabulary "
                                 f"[0, {vocab_size})")
            pairs.append((i, tok, float(bias)))
    return pairs


def _floats(values: list[float], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).to(device)


def build_sampling_metadata(states: list[SamplingRequestState], vocab_size: int,
                            device: torch.device) -> SamplingMetadata:
    """Batch the requests' sampling parameters (row i = states[i])."""
    ps = [s.params for s in states]
    greedy = [p.greedy for p in ps]
    all_greedy, all_random = all(greedy), not any(greedy)
    temperature = greedy_mask = top_k = top_p = min_p = None
    top_k_max = None
    if not all_greedy:
        temperature = _floats([1.0 if g else p.temperature for p, g in zip(ps, greedy, strict=True)],
                              device)
        if not all_random:
            greedy_mask = torch.tensor(greedy, dtype=torch.bool).to(device)
        if any(0 < p.top_k < vocab_size for p in ps):
            ks = [p.top_k if 0 < p.top_k < vocab_size else 0 for p in ps]
            top_k = torch.tensor(ks, dtype=torch.int64).to(device)
            top_k_max = max(k if k > 0 else vocab_size for k in ks)
        if any(p.top_p < 1.0 for p in ps):
            top_p = _floats([p.top_p for p in ps], device)
        if any(p.min_p > 0.0 for p in ps):
            min_p = _floats([p.min_p for p in ps], device)

    presence = frequency = repetition = prompt_ids = output_ids = None
    if any(p.presence_penalty or p.frequency_penalty or p.repetition_penalty != 1.0 for p in ps):
        presence = _floats([p.presence_penalty for p in ps], device)
        frequency = _floats([p.frequency_penalty for p in ps], device)
        output_ids = _pad([s.output_token_ids for s in states], vocab_size, device)
        if any(p.repetition_penalty != 1.0 for p in ps):
            repetition = _floats([p.repetition_penalty for p in ps], device)
            prompt_ids = _pad([s.prompt_token_ids for s in states], vocab_size, device)

    mt = _sparse(_min_tokens_pairs(states, vocab_size), device)
    wanted = [p.logprobs for p in ps if p.logprobs is not None]
    return SamplingMetadata(
        num_rows=len(states), vocab_size=vocab_size, all_greedy=all_greedy, all_random=all_random,
        temperature=temperature, greedy_mask=greedy_mask, top_k=top_k, top_k_max=top_k_max,
        top_p=top_p, min_p=min_p, presence_penalty=presence, frequency_penalty=frequency,
        repetition_penalty=repetition, prompt_token_ids=prompt_ids, output_token_ids=output_ids,
        logit_bias=_sparse(_bias_pairs(states, vocab_size), device),
        min_tokens_mask=None if mt is None else (mt[0], mt[1]),
        max_num_logprobs=max(wanted) if wanted else None,
        generators={i: s.generator for i, s in enumerate(states)
                    if s.generator is not None and not s.params.greedy},
    )
