"""Detokenizer and OutputProcessor in isolation: multi-byte UTF-8, stop strings across token
boundaries, output kinds, n>1 fan-in, logprobs."""

from __future__ import annotations

import pytest

from vllm.core.types import EngineCoreOutput
from vllm.engine.detokenizer import IncrementalDetokenizer
from vllm.engine.output_processor import OutputProcessor, child_requests
from vllm.sampling_params import RequestOutputKind, SamplingParams


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir: str):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(tiny_llama_dir)


TEXT = "naïve café: 世界 🙂 ok ünïcödé €100"


def test_incremental_utf8_never_partial(tokenizer) -> None:
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    assert len(ids) > len(TEXT) // 3  # the tiny tokenizer splits multi-byte chars into bytes
    prompt = tokenizer.encode("hello", add_special_tokens=False)
    det = IncrementalDetokenizer(tokenizer, prompt)
    pieces = [det.step([t]) for t in ids]
    pieces.append(det.flush())
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) == tokenizer.decode(prompt + ids)[len(tokenizer.decode(prompt)):]


def test_special_tokens_skipped(tokenizer) -> None:
    eos = tokenizer.eos_token_id
    ids = tokenizer.encode("ab", add_special_tokens=False) + [eos]
    det = IncrementalDetokenizer(tokenizer, [], skip_special_tokens=True)
    assert "".join(det.step([t]) for t in ids) + det.flush() == "ab"
    det = IncrementalDetokenizer(tokenizer, [], skip_special_tokens=False)
    assert tokenizer.eos_token in "".join(det.step([t]) for t in ids) + det.flush()


def _feed(proc: OutputProcessor, rid: str, ids: list[int], finish_last: str | None = "length"):
    results, aborts = [], []
    for i, t in enumerate(ids):
        last = i == len(ids) - 1
        eo = EngineCoreOutput(rid, [t], finish_reason=finish_last if last else None)
        r, a = proc.process([eo])
        results += r
        aborts += a
        if a:
            break
    return results, aborts


def test_stop_string_across_tokens(tokenizer) -> None:
    ids = tokenizer.encode("the cat sat on the mat", add_special_tokens=False)
    proc = OutputProcessor(tokenizer)
    params = SamplingParams(stop=["sat on"], max_tokens=50)
    proc.add_request("r", None, [1], params)
    results, aborts = _feed(proc, "r", ids)
    assert aborts == ["r"]
    final = results[-1].outputs[0]
    assert final.text == "the cat " and final.finish_reason == "stop" and final.stop_reason == "sat on"
    assert results[-1].finished and not proc.has_unfinished_requests()
    # streamed (cumulative) texts never showed a prefix of the stop string and never shrink
    texts = [r.outputs[0].text for r in results]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))


def test_delta_and_final_only(tokenizer) -> None:
    ids = tokenizer.encode("hello there world", add_special_tokens=False)
    proc = OutputProcessor(tokenizer)
    proc.add_request("d", None, [1], SamplingParams(output_kind=RequestOutputKind.DELTA))
    proc.add_request("f", None, [1], SamplingParams(output_kind=RequestOutputKind.FINAL_ONLY))
    deltas, _ = _feed(proc, "d", ids)
    finals, _ = _feed(proc, "f", ids)
    assert "".join(r.outputs[0].text for r in deltas) == "hello there world"
    assert sum(len(r.outputs[0].token_ids) for r in deltas) == len(ids)
    assert len(finals) == 1 and finals[0].outputs[0].text == "hello there world"


def test_n_fan_in(tokenizer) -> None:
    params = SamplingParams(n=3, seed=5, output_kind=RequestOutputKind.FINAL_ONLY)
    kids = child_requests("p", params)
    assert [k[0] for k in kids] == ["0_p", "1_p", "2_p"] and [k[1].seed for k in kids] == [5, 6, 7]
    proc = OutputProcessor(tokenizer)
    for cid, _, idx in kids:
        proc.add_request(cid, "x", [1], params, parent_id="p", index=idx)
    out = []
    for i, (cid, _, _) in enumerate(kids):
        r, _ = proc.process([EngineCoreOutput(cid, [10 + i], finish_reason="length")])
        out += r
    assert len(out) == 1 and out[0].request_id == "p" and out[0].finished
    assert [c.token_ids for c in out[0].outputs] == [[10], [11], [12]]
    assert proc.abort(["p"]) == [] and not proc.parents


def test_logprobs_and_abort(tokenizer) -> None:
    proc = OutputProcessor(tokenizer)
    proc.add_request("r", None, [1], SamplingParams(logprobs=1))
    eo = EngineCoreOutput("r", [5], new_logprobs=[{5: (-0.5, 2), 9: (-0.1, 1)}])
    (ro,), _ = proc.process([eo])
    c = ro.outputs[0]
    assert c.logprobs[0][5].logprob == -0.5 and c.logprobs[0][9].rank == 1
    assert c.cumulative_logprob == -0.5
    assert proc.abort(["r"]) == ["r"] and not proc.has_unfinished_requests()
