"""The engine core's overlapped stepping (next step launched before this step's outputs are
processed), which GPUs use: same tokens, stop strings and aborts as the plain loop, and every KV
block back in the pool. Forced on here, on the CPU, through the platform attribute."""

from __future__ import annotations

import pytest

from vllm import LLM, SamplingParams

PROMPTS = [[5, 17, 99, 3], list(range(10, 40)), [7] * 17, list(range(100, 111))]


def _llm(model: str, overlap: bool, monkeypatch: pytest.MonkeyPatch) -> LLM:
    from vllm.platforms import current_platform

    monkeypatch.setattr(type(current_platform), "async_device_execution", overlap)
    llm = LLM(model=model, kv_cache_space_gib=0.02, seed=0, max_num_seqs=3)
    assert llm.llm_engine.core.overlap is overlap
    return llm


def _free(llm: LLM) -> tuple[int, int]:
    stats = llm.llm_engine.get_stats()
    return stats.num_free_blocks, stats.num_blocks


def test_overlap_same_outputs(tiny_llama_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # greedy, a seeded random request, and a stop string found by the output processor
    text_probe = SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True)
    runs = {}
    for overlap in (False, True):
        llm = _llm(tiny_llama_dir, overlap, monkeypatch)
        greedy = llm.generate(PROMPTS, SamplingParams(temperature=0.0, max_tokens=16,
                                                      ignore_eos=True), use_tqdm=False)
        seeded = llm.generate(PROMPTS[:2], SamplingParams(temperature=1.0, seed=7, max_tokens=12,
                                                          ignore_eos=True), use_tqdm=False)
        full = llm.generate(["hello world"], text_probe, use_tqdm=False)[0].outputs[0].text
        stop = full[len(full) // 2:][:3] or full[:1]
        stopped = llm.generate(["hello world"] * 2, SamplingParams(
            temperature=0.0, max_tokens=20, ignore_eos=True, stop=[stop]), use_tqdm=False)
        runs[overlap] = ([o.outputs[0].token_ids for o in greedy + seeded],
                         [(o.outputs[0].text, o.outputs[0].finish_reason) for o in stopped])
        llm.llm_engine.core.step()  # drain a step left in flight by the late stop-string abort
        free, total = _free(llm)
        assert free == total, f"overlap={overlap}: {total - free} KV blocks still allocated"
        llm.llm_engine.shutdown()
    assert runs[True] == runs[False]
    assert all(reason == "stop" for _, reason in runs[True][1])


def test_overlap_abort_mid_run(tiny_llama_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    llm = _llm(tiny_llama_dir, True, monkeypatch)
    engine = llm.llm_engine
    params = SamplingParams(temperature=0.0, max_tokens=30, ignore_eos=True)
    for i, p in enumerate(PROMPTS[:3]):
        engine.add_request(str(i), p, params)
    finished: dict[str, int] = {}
    for step in range(40):
        if step == 3:
            engine.abort_request("1")
        for out in engine.step():
            if out.finished:
                finished[out.request_id] = len(out.outputs[0].token_ids)
        if not engine.has_unfinished_requests():
            break
    assert finished.get("0") == 30 and finished.get("2") == 30
    engine.core.step()
    assert _free(llm)[0] == _free(llm)[1]
    engine.shutdown()


def test_schedule_ahead_under_preemption(tiny_llama_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps scheduled before the previous tokens are known, with requests preempted while a
    step that samples for them is in flight: same greedy and seeded tokens as the plain loop."""
    from vllm.platforms import current_platform

    greedy = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)
    seeded = [SamplingParams(temperature=1.0, max_tokens=24, seed=i, ignore_eos=True) for i in range(4)]
    runs = {}
    for overlap in (False, True):
        monkeypatch.setattr(type(current_platform), "async_device_execution", overlap)
        llm = LLM(model=tiny_llama_dir, num_kv_blocks_override=6, block_size=16, seed=0)
        outs = llm.generate(PROMPTS, greedy, use_tqdm=False) + llm.generate(PROMPTS, seeded, use_tqdm=False)
        core = llm.llm_engine.core
        assert core.get_stats().num_preemptions > 0
        assert (core.num_steps_ahead > 0) is overlap
        runs[overlap] = [o.outputs[0].token_ids for o in outs]
        llm.llm_engine.shutdown()
    assert runs[True] == runs[False]


def test_penalties_step_synchronously(tiny_llama_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request whose sampling reads its own outputs (penalties, min_tokens) is never stepped
    ahead; mixed with plain requests the results equal the plain loop's."""
    from vllm.platforms import current_platform

    params = [SamplingParams(temperature=0.0, max_tokens=16, ignore_eos=True),
              SamplingParams(temperature=0.0, max_tokens=16, ignore_eos=True, repetition_penalty=1.3),
              SamplingParams(temperature=0.0, max_tokens=16, ignore_eos=True, frequency_penalty=0.8),
              SamplingParams(temperature=0.0, max_tokens=16, min_tokens=10)]
    runs = {}
    for overlap in (False, True):
        monkeypatch.setattr(type(current_platform), "async_device_execution", overlap)
        llm = LLM(model=tiny_llama_dir, kv_cache_space_gib=0.02, seed=0)
        runs[overlap] = [o.outputs[0].token_ids for o in llm.generate(PROMPTS, params, use_tqdm=False)]
        llm.llm_engine.shutdown()
    assert runs[True] == runs[False]
