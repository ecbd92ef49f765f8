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
    # Derived once from the params (they never change for a request):
    plain_greedy: bool = field(init=False)  # argmax of the raw logits is all this row needs
    min_tokens_ids: tuple[int, ...] = field(init=False)  # masked while under min_tokens

    def __post_init__(self) -> None:
        p = self.params
        stop_ids = set(p.stop_token_ids) if p.min_tokens > 0 else set()
        if p.min_tokens > 0 and self.eos_token_id is not None and not p.ignore_eos:
            stop_ids.add(self.eos_token_id)
        self.min_tokens_ids = tuple(sorted(stop_ids))
        self.plain_greedy = (p.greedy and p.logprobs is None and not p.logit_bias
                             and not p.presence_penalty and not p.frequency_penalty
                             and p.repetition_penalty == 1.0)

    @property
    def needs_min_tokens_mask(self) -> bool:
        return bool(self.min_tokens_ids) and len(self.output_token_ids) < self.params.min_tokens


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
    # Rows whose own top-k is on sample among their top-k candidates; the others over the
    # whole vocabulary. For a batch with both: (host row list, device int64 index) per group.
    top_k_rows_all: bool = False
    top_k_rows_max: int = 0  # largest k among the rows with top-k
    top_k_split: tuple[tuple[list[int], torch.Tensor], tuple[list[int], torch.Tensor]] | None = None
    # Every row is greedy with nothing to apply (no bias, penalties, min_tokens mask or
    # logprobs): the argmax of the raw logits, in the model's dtype, is the whole sampler.
    plain_greedy: bool = False


def to_device_async(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host tensor -> ``device`` without waiting for the device: a plain copy from pageable
    memory would block until the queued forward pass finishes. Pinned staging memory stays
    alive until the copy is done (the pinned allocator tracks its stream)."""
    device = torch.device(device)
    if t.device == device or device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def _pad(rows: list[list[int]], pad: int, device: torch.device) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0)
    data = [r + [pad] * (width - len(r)) for r in rows]
    return to_device_async(torch.tensor(data, dtype=torch.int64).view(len(rows), width), device)


def _sparse(pairs: list[tuple[int, int, float]], device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    if not pairs:
        return None
    rows, cols, vals = zip(*pairs, strict=True)
    return (to_device_async(torch.tensor(rows, dtype=torch.int64), device),
            to_device_async(torch.tensor(cols, dtype=torch.int64), device),
            to_device_async(torch.tensor(vals, dtype=torch.float32), device))


def _min_tokens_pairs(states: list[SamplingRequestState], vocab_size: int
                      ) -> list[tuple[int, int, float]]:
    pairs = []
    for i, s in enumerate(states):
        if s.needs_min_tokens_mask:
            pairs += [(i, t, 0.0) for t in s.min_tokens_ids if 0 <= t < vocab_size]
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
    return to_device_async(torch.tensor(values, dtype=torch.float32), device)


def _all_greedy(num_rows: int, vocab_size: int) -> SamplingMetadata:
    return SamplingMetadata(
        num_rows=num_rows, vocab_size=vocab_size, all_greedy=True, all_random=False,
        temperature=None, greedy_mask=None, top_k=None, top_k_max=None, top_p=None, min_p=None,
        presence_penalty=None, frequency_penalty=None, repetition_penalty=None,
        prompt_token_ids=None, output_token_ids=None, logit_bias=None, min_tokens_mask=None,
        max_num_logprobs=None, plain_greedy=True,
    )


def build_sampling_metadata(states: list[SamplingRequestState], vocab_size: int,
                            device: torch.device) -> SamplingMetadata:
    """Batch the requests' sampling parameters (row i = states[i])."""
    if all(s.plain_greedy for s in states) and not any(
        s.needs_min_tokens_mask for s in states if s.min_tokens_ids
    ):
        return _all_greedy(len(states), vocab_size)  # the common case: nothing to build
    ps = [s.params for s in states]
    greedy = [p.greedy for p in ps]
    all_greedy, all_random = all(greedy), not any(greedy)
    temperature = greedy_mask = top_k = top_p = min_p = None
    top_k_max = None
    top_k_rows_all, top_k_rows_max, top_k_split = False, 0, None
    if not all_greedy:
        temperature = _floats([1.0 if g else p.temperature for p, g in zip(ps, greedy, strict=True)],
                              device)
        if not all_random:
            greedy_mask = to_device_async(torch.tensor(greedy, dtype=torch.bool), device)
        if any(0 < p.top_k < vocab_size for p in ps):
            ks = [p.top_k if 0 < p.top_k < vocab_size else 0 for p in ps]
            top_k = to_device_async(torch.tensor(ks, dtype=torch.int64), device)
            top_k_max = max(k if k > 0 else vocab_size for k in ks)
            with_k = [i for i, k in enumerate(ks) if k > 0]
            without_k = [i for i, k in enumerate(ks) if k <= 0]
            top_k_rows_max = max(ks)
            top_k_rows_all = not without_k
            if without_k:
                top_k_split = tuple(  # type: ignore[assignment]
                    (r, to_device_async(torch.tensor(r, dtype=torch.int64), device))
                    for r in (with_k, without_k)
                )
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
        top_k_rows_all=top_k_rows_all, top_k_rows_max=top_k_rows_max, top_k_split=top_k_split,
        top_p=top_p, min_p=min_p, presence_penalty=presence, frequency_penalty=frequency,
        repetition_penalty=repetition, prompt_token_ids=prompt_ids, output_token_ids=output_ids,
        logit_bias=_sparse(_bias_pairs(states, vocab_size), device),
        min_tokens_mask=None if mt is None else (mt[0], mt[1]),
        max_num_logprobs=max(wanted) if wanted else None,
        generators={i: s.generator for i, s in enumerate(states)
                    if s.generator is not None and not s.params.greedy},
    )
