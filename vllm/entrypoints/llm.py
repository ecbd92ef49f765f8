"""vllm.LLM: the offline API (generate, chat, beam_search) over an in-process LLMEngine."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

from vllm.config import config_from_flat
from vllm.engine.llm_engine import LLMEngine
from vllm.outputs import BeamSearchOutput, BeamSearchSequence, RequestOutput
from vllm.sampling_params import BeamSearchParams, RequestOutputKind, SamplingParams

Prompt = str | list[int]


def _normalize_prompts(prompts: Any) -> list[Prompt]:
    if isinstance(prompts, str):
        return [prompts]
    prompts = list(prompts)
    if prompts and all(isinstance(t, int) for t in prompts):
        return [prompts]  # one prompt given as token ids
    for i, p in enumerate(prompts):
        if not isinstance(p, (str, list)):
            raise ValueError(f"prompts[{i}] must be a string or a list of token ids, got {type(p).__name__}")
    return prompts


class LLM:
    """``LLM(model=..., dtype=..., max_model_len=..., **any VllmConfig field)``."""

    def __init__(self, model: str = "", **kwargs: Any) -> None:
        start = time.perf_counter()
        config = config_from_flat(model=model, **kwargs)
        self.llm_engine = LLMEngine.from_config(config)
        self.startup_time_s = time.perf_counter() - start
        self._counter = itertools.count()

    def get_tokenizer(self) -> Any:
        return self.llm_engine.tokenizer

    # ---- generate ---------------------------------------------------------------------
    def generate(
        self,
        prompts: str | list[str] | list[int] | list[list[int]],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        use_tqdm: bool = True,
    ) -> list[RequestOutput]:
        """Run every prompt to completion; outputs come back in input order."""
        plist = _normalize_prompts(prompts)
        if sampling_params is None:
            sampling_params = SamplingParams()
        if isinstance(sampling_params, SamplingParams):
            params = [sampling_params] * len(plist)
        else:
            params = list(sampling_params)
            if len(params) != len(plist):
                raise ValueError(
                    f"sampling_params has {len(params)} entries but there are {len(plist)} prompts"
                )
        ids = self._add_all(plist, params)
        return self._run(ids, use_tqdm)

    def _add_all(self, prompts: list[Prompt], params: list[SamplingParams]) -> list[str]:
        engine = self.llm_engine
        ids: list[str] = []
        try:
            for prompt, p in zip(prompts, params, strict=True):
                p = p.clone()
                p.output_kind = RequestOutputKind.FINAL_ONLY
                rid = str(next(self._counter))
                engine.add_request(rid, prompt, p)
                ids.append(rid)
        except ValueError:
            engine.abort_request(ids)
            raise
        return ids

    def _run(self, ids: list[str], use_tqdm: bool) -> list[RequestOutput]:
        engine = self.llm_engine
        done: dict[str, RequestOutput] = {}
        bar = None
        if use_tqdm:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(ids), desc="Processed prompts", dynamic_ncols=True)
        start = time.perf_counter()
        out_tokens = 0
        while engine.has_unfinished_requests():
            for ro in engine.step():
                if ro.finished:
                    done[ro.request_id] = ro
                    out_tokens += sum(len(c.token_ids) for c in ro.outputs)
                    if bar is not None:
                        rate = out_tokens / max(time.perf_counter() - start, 1e-9)
                        bar.set_postfix_str(f"output {rate:.1f} tok/s", refresh=False)
                        bar.update(1)
        if bar is not None:
            bar.close()
        missing = [i for i in ids if i not in done]
        if missing:
            raise RuntimeError(f"requests {missing[:5]} ended without output")
        return [done[i] for i in ids]

    # ---- chat -------------------------------------------------------------------------
    def chat(
        self,
        messages: list[dict[str, Any]] | list[list[dict[str, Any]]],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        chat_template: str | None = None,
        add_generation_prompt: bool = True,
        use_tqdm: bool = True,
    ) -> list[RequestOutput]:
        """Apply the chat template to each conversation and generate."""
        convs = [messages] if messages and isinstance(messages[0], dict) else list(messages)
        tok = self.get_tokenizer()
        template = chat_template or self.llm_engine.config.model.chat_template
        prompts: list[Prompt] = []
        for conv in convs:
            kwargs: dict[str, Any] = {"add_generation_prompt": add_generation_prompt, "tokenize": False}
            if template:
                kwargs["chat_template"] = template
            text = tok.apply_chat_template(conv, **kwargs)
            prompts.append(list(tok.encode(text, add_special_tokens=False)))
        return self.generate(prompts, sampling_params, use_tqdm=use_tqdm)

    # ---- beam search ------------------------------------------------------------------
    def beam_search(
        self, prompts: str | list[str] | list[list[int]], params: BeamSearchParams
    ) -> list[BeamSearchOutput]:
        """Per step, every live beam asks for one token with ``2 * beam_width`` logprobs; the
        best ``beam_width`` continuations by cumulative logprob survive. Shared prefixes reuse
        KV blocks through the prefix cache. Sequences hold prompt + generated tokens; ``text``
        is the generated part."""
        tok = self.get_tokenizer()
        engine = self.llm_engine
        eos = engine.input_processor.eos_token_id
        max_len = engine.input_processor.max_model_len
        width = params.beam_width
        plist = [p if isinstance(p, list) else list(tok.encode(p)) for p in _normalize_prompts(prompts)]
        live: list[list[_Beam]] = [[_Beam([], 0.0)] for _ in plist]
        done: list[list[_Beam]] = [[] for _ in plist]
        sp = SamplingParams(max_tokens=1, temperature=0.0, logprobs=2 * width, ignore_eos=True)
        for _ in range(params.max_tokens):
            work = [(pi, b) for pi, beams in enumerate(live) for b in beams
                    if len(plist[pi]) + len(b.tokens) < max_len]
            if not work:
                break
            outs = self.generate([plist[pi] + b.tokens for pi, b in work], sp, use_tqdm=False)
            cands: list[list[_Beam]] = [[] for _ in plist]
            for (pi, b), ro in zip(work, outs, strict=True):
                for t, lp in (ro.outputs[0].logprobs or [{}])[0].items():
                    cands[pi].append(_Beam(b.tokens + [t], b.cum + lp.logprob))
            for pi, cs in enumerate(cands):
                cs.sort(key=lambda c: c.cum, reverse=True)
                live[pi] = []
                for c in cs:
                    if len(live[pi]) == width:
                        break
                    if c.tokens[-1] == eos and not params.ignore_eos:
                        c.finish_reason = "stop"
                        done[pi].append(c)
                    else:
                        live[pi].append(c)
        results = []
        for pi, prompt_ids in enumerate(plist):
            pool = done[pi] + live[pi]
            pool.sort(key=lambda c: c.score(params.length_penalty), reverse=True)
            seqs = [
                BeamSearchSequence(prompt_ids + c.tokens, tok.decode(c.tokens, skip_special_tokens=True),
                                   c.cum, c.finish_reason or "length")
                for c in pool[:width]
            ]
            results.append(BeamSearchOutput(seqs))
        return results


class _Beam:
    __slots__ = ("tokens", "cum", "finish_reason")

    def __init__(self, tokens: list[int], cum: float) -> None:
        self.tokens = tokens
        self.cum = cum
        self.finish_reason: str | None = None

    def score(self, length_penalty: float) -> float:
        return self.cum / (max(len(self.tokens), 1) ** length_penalty)


__all__ = ["LLM", "BeamSearchOutput", "BeamSearchSequence"]
