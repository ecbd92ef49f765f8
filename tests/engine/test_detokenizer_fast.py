"""The fast decode path and the lazy (final-only) detokenizer give exactly the text of the
plain incremental path, including multi-byte characters and special tokens."""

from __future__ import annotations

import random

import pytest

from vllm.core.types import EngineCoreOutput
from vllm.engine.detokenizer import IncrementalDetokenizer, make_decode_fn
from vllm.engine.output_processor import OutputProcessor
from vllm.sampling_params import RequestOutputKind, SamplingParams

TEXT = "naïve café: 世界 🙂 ok ünïcödé €100, the cat sat on the mat."


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir: str):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_llama_dir)


def _incremental(det: IncrementalDetokenizer, ids: list[int]) -> str:
    return "".join(det.step([t]) for t in ids) + det.flush()


@pytest.mark.parametrize("skip", [True, False])
def test_fast_decode_matches_tokenizer(tokenizer, skip: bool) -> None:
    fast = make_decode_fn(tokenizer, skip)
    rng = random.Random(0)
    cases = [tokenizer.encode(TEXT, add_special_tokens=False) + [tokenizer.eos_token_id]]
    cases += [[rng.randrange(len(tokenizer)) for _ in range(rng.randrange(1, 30))] for _ in range(50)]
    for ids in cases:
        assert fast(ids) == tokenizer.decode(ids, skip_special_tokens=skip)


@pytest.mark.parametrize("skip", [True, False])
def test_lazy_equals_incremental(tokenizer, skip: bool) -> None:
    prompt = tokenizer.encode("hello there", add_special_tokens=False)
    ids = tokenizer.encode(TEXT, add_special_tokens=False) + [tokenizer.eos_token_id]
    eager = IncrementalDetokenizer(tokenizer, prompt, skip)
    lazy = IncrementalDetokenizer(tokenizer, prompt, skip, lazy=True)
    assert all(lazy.step([t]) == "" for t in ids[:-1])
    lazy.step(ids[-1:])
    assert lazy.flush() == _incremental(eager, ids)


def test_final_only_output_text_equals_cumulative(tokenizer) -> None:
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    texts = {}
    for kind in (RequestOutputKind.CUMULATIVE, RequestOutputKind.FINAL_ONLY):
        proc = OutputProcessor(tokenizer)
        proc.add_request("r", None, [1, 2, 3], SamplingParams(max_tokens=100, output_kind=kind))
        outs = []
        for i, t in enumerate(ids):
            last = i == len(ids) - 1
            r, _ = proc.process([EngineCoreOutput("r", [t], finish_reason="length" if last else None)])
            outs += r
        if kind == RequestOutputKind.FINAL_ONLY:
            assert len(outs) == 1  # nothing is reported before the end
        assert outs[-1].finished
        texts[kind] = outs[-1].outputs[0].text
    assert texts[RequestOutputKind.FINAL_ONLY] == texts[RequestOutputKind.CUMULATIVE] == TEXT
