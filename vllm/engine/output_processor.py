"""Output processing in the API process: incremental detokenization, stop strings, logprobs,
fan-in of ``n > 1`` child requests into one RequestOutput."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vllm.core.types import EngineCoreOutput, TokenLogprobs
from vllm.engine.detokenizer import DecodeFn, IncrementalDetokenizer, make_decode_fn
from vllm.outputs import CompletionOutput, Logprob, PositionLogprobs, RequestOutput
from vllm.sampling_params import RequestOutputKind, SamplingParams


def child_requests(request_id: str, params: SamplingParams) -> list[tuple[str, SamplingParams, int]]:
    """Split an ``n > 1`` request into n single-sample children sharing the prompt (their KV
    blocks are shared through the prefix cache). Seeded requests get seed + index."""
    if params.n == 1:
        return [(request_id, params, 0)]
    out = []
    for i in range(params.n):
        child = params.clone()
        child.n = 1
        if child.seed is not None:
            child.seed = (child.seed + i) % (2**63)
        out.append((f"{i}_{request_id}", child, i))
    return out


@dataclass
class _ReqState:
    request_id: str
    parent_id: str
    index: int
    prompt: str | None
    prompt_token_ids: list[int]
    params: SamplingParams
    detok: IncrementalDetokenizer
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    logprobs: list[PositionLogprobs] | None = None
    cumulative_logprob: float | None = None
    prompt_logprobs: list[PositionLogprobs | None] | None = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    num_cached_tokens: int = 0
    sent_text: int = 0  # DELTA bookkeeping: chars / tokens already handed out
    sent_tokens: int = 0

    @property
    def holdback(self) -> int:
        """Chars kept from streaming while a stop string could still be forming."""
        if self.finish_reason is not None or not self.params.stop:
            return 0
        return max(len(s) for s in self.params.stop) - 1


@dataclass
class _Parent:
    request_id: str
    n: int
    children: dict[int, _ReqState] = field(default_factory=dict)
    finished: set[int] = field(default_factory=set)


class OutputProcessor:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.requests: dict[str, _ReqState] = {}  # core request id -> state
        self.parents: dict[str, _Parent] = {}
        self._decoders: dict[bool, DecodeFn] = {}  # skip_special_tokens -> decode function

    def add_request(
        self, request_id: str, prompt: str | None, prompt_token_ids: list[int],
        params: SamplingParams, parent_id: str | None = None, index: int = 0,
    ) -> None:
        """Register a core request. For ``n > 1`` children pass the parent's params (n = number
        of children) and ``parent_id``; outputs are reported under the parent id."""
        if request_id in self.requests:
            raise ValueError(f"request_id {request_id!r} is already in use")
        pid = parent_id if parent_id is not None else request_id
        parent = self.parents.setdefault(pid, _Parent(pid, params.n if parent_id else 1))
        # Final-only outputs without stop strings read the text once, at the end: decode then.
        lazy = params.output_kind == RequestOutputKind.FINAL_ONLY and not params.stop
        decode_fn = self._decoders.get(params.skip_special_tokens)
        if decode_fn is None:
            decode_fn = make_decode_fn(self.tokenizer, params.skip_special_tokens)
            self._decoders[params.skip_special_tokens] = decode_fn
        detok = IncrementalDetokenizer(self.tokenizer, prompt_token_ids, params.skip_special_tokens,
                                       lazy=lazy, decode_fn=decode_fn)
        st = _ReqState(request_id, pid, index, prompt, list(prompt_token_ids), params, detok)
        if params.logprobs is not None:
            st.logprobs, st.cumulative_logprob = [], 0.0
        parent.children[index] = st
        self.requests[request_id] = st

    def abort(self, request_ids: list[str]) -> list[str]:
        """Forget requests (parent or core ids); returns the core ids to abort in the core."""
        core_ids: list[str] = []
        for rid in request_ids:
            parent = self.parents.pop(rid, None)
            states = list(parent.children.values()) if parent else []
            if not states and rid in self.requests:
                states = [self.requests[rid]]
                self.parents.pop(states[0].parent_id, None)
            for st in states:
                if self.requests.pop(st.request_id, None) is not None:
                    core_ids.append(st.request_id)
        return core_ids

    def has_unfinished_requests(self) -> bool:
        return bool(self.requests)

    def process(self, outputs: list[EngineCoreOutput]) -> tuple[list[RequestOutput], list[str]]:
        touched: dict[str, set[int]] = {}
        to_abort: list[str] = []
        for eo in outputs:
            st = self.requests.get(eo.request_id)
            if st is None:
                continue
            if (st.detok.lazy and eo.finish_reason is None and eo.prompt_logprobs is None
                    and st.logprobs is None):
                # A final-only request mid-generation: just collect its tokens.
                st.num_cached_tokens = eo.num_cached_tokens
                st.token_ids.extend(eo.new_token_ids)
                st.detok.tokens.extend(eo.new_token_ids)
                continue
            if self._update(st, eo):
                to_abort.append(eo.request_id)
            if st.finish_reason is not None:
                self.requests.pop(st.request_id, None)
                self.parents[st.parent_id].finished.add(st.index)
            elif st.params.output_kind == RequestOutputKind.FINAL_ONLY:
                continue  # nothing to report before the end
            touched.setdefault(st.parent_id, set()).add(st.index)
        results = []
        for pid, changed in touched.items():
            ro = self._make_output(self.parents[pid], changed)
            if ro is not None:
                results.append(ro)
            if ro is not None and ro.finished:
                self.parents.pop(pid, None)
        return results, to_abort

    # ---- per core output --------------------------------------------------------------
    def _update(self, st: _ReqState, eo: EngineCoreOutput) -> bool:
        """Fold one core output in; True when a stop string ended a request the core still runs."""
        st.num_cached_tokens = eo.num_cached_tokens
        if eo.prompt_logprobs is not None:
            if eo.prompt_logprobs and eo.prompt_logprobs[0] is None:
                st.prompt_logprobs = []  # a prefill from position 0 (again, after preemption)
            st.prompt_logprobs = (st.prompt_logprobs or []) + [
                self._to_logprobs(p) if p is not None else None for p in eo.prompt_logprobs
            ]
        st.token_ids.extend(eo.new_token_ids)
        if st.logprobs is not None and eo.new_logprobs:
            for tok, row in zip(eo.new_token_ids, eo.new_logprobs, strict=False):
                st.logprobs.append(self._to_logprobs(row))
                st.cumulative_logprob = (st.cumulative_logprob or 0.0) + row[tok][0]
        old_len = len(st.text)
        piece = st.detok.step(eo.new_token_ids)
        if piece:
            st.text += piece
        if eo.finish_reason is not None:
            st.text += st.detok.flush()
        if st.params.stop and self._check_stop_strings(st, old_len):
            return eo.finish_reason is None
        if eo.finish_reason is not None:
            st.finish_reason, st.stop_reason = eo.finish_reason, eo.stop_reason
        return False

    @staticmethod
    def _check_stop_strings(st: _ReqState, old_len: int) -> bool:
        longest = max(len(s) for s in st.params.stop)
        start = max(0, old_len - longest + 1)
        best: tuple[int, str] | None = None
        for s in st.params.stop:
            i = st.text.find(s, start)
            if i >= 0 and (best is None or i < best[0]):
                best = (i, s)
        if best is None:
            return False
        i, s = best
        st.text = st.text[: i + len(s)] if st.params.include_stop_str_in_output else st.text[:i]
        st.finish_reason, st.stop_reason = "stop", s
        return True

    def _to_logprobs(self, row: TokenLogprobs) -> PositionLogprobs:
        decode = self._decoders.get(False)
        if decode is None:  # same as tokenizer.decode([tok]) (special tokens kept)
            decode = self._decoders[False] = make_decode_fn(self.tokenizer, False)
        return {tok: Logprob(lp, rank, decode([tok])) for tok, (lp, rank) in row.items()}

    # ---- user-facing outputs ----------------------------------------------------------
    def _make_output(self, parent: _Parent, changed: set[int]) -> RequestOutput | None:
        finished = len(parent.finished) == parent.n
        first = next(iter(parent.children.values()))
        kind = first.params.output_kind
        if kind == RequestOutputKind.FINAL_ONLY and not finished:
            return None
        delta = kind == RequestOutputKind.DELTA
        indices = sorted(changed) if delta else sorted(parent.children)
        completions = [self._completion(parent.children[i], delta) for i in indices]
        return RequestOutput(
            request_id=parent.request_id,
            prompt=first.prompt,
            prompt_token_ids=first.prompt_token_ids,
            outputs=completions,
            finished=finished,
            prompt_logprobs=first.prompt_logprobs,
            num_cached_tokens=first.num_cached_tokens,
            metrics={
                "num_prompt_tokens": float(len(first.prompt_token_ids)),
                "num_generation_tokens": float(sum(len(c.token_ids) for c in parent.children.values())),
            },
        )

    @staticmethod
    def _completion(st: _ReqState, delta: bool) -> CompletionOutput:
        end = max(0, len(st.text) - st.holdback)
        if delta:
            text, tokens = st.text[st.sent_text : max(end, st.sent_text)], st.token_ids[st.sent_tokens :]
            lps = st.logprobs[st.sent_tokens :] if st.logprobs is not None else None
            st.sent_text, st.sent_tokens = max(end, st.sent_text), len(st.token_ids)
        else:
            text, tokens, lps = st.text[:end], list(st.token_ids), st.logprobs
        return CompletionOutput(
            index=st.index, text=text, token_ids=tokens, cumulative_logprob=st.cumulative_logprob,
            logprobs=list(lps) if lps is not None else None,
            finish_reason=st.finish_reason, stop_reason=st.stop_reason,
        )
