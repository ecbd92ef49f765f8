"""End to end through vllm.LLM on a tiny random Llama: greedy parity with HF transformers and
invariance under preemption, chunked prefill and batch size; prefix caching, n>1, stop strings,
bad inputs."""

from __future__ import annotations

import random

import pytest
import torch

from vllm import LLM, SamplingParams

PROMPTS = [[5, 17, 99, 3], list(range(10, 40)), [7] * 17, list(range(100, 111))]
GREEDY = SamplingParams(temperature=0.0, max_tokens=32, ignore_eos=True)


def _ids(outs) -> list[list[int]]:
    return [o.outputs[0].token_ids for o in outs]


@pytest.fixture(scope="module")
def llm(tiny_llama_dir: str) -> LLM:
    return LLM(model=tiny_llama_dir, kv_cache_space_gib=0.02, seed=0)


@pytest.fixture(scope="module")
def hf_greedy(tiny_llama_dir: str) -> list[list[int]]:
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    model.eval()
    out = []
    for p in PROMPTS:
        with torch.no_grad():
            seq = model.generate(torch.tensor([p]), max_new_tokens=32, min_new_tokens=32,
                                 do_sample=False)
        out.append(seq[0, len(p):].tolist())
    return out


def test_greedy_matches_hf(llm: LLM, hf_greedy: list[list[int]]) -> None:
    outs = llm.generate(PROMPTS, GREEDY, use_tqdm=False)
    assert _ids(outs) == hf_greedy
    for o, p in zip(outs, PROMPTS, strict=True):
        assert o.prompt_token_ids == p and o.finished
        assert o.outputs[0].finish_reason == "length"


def test_preemption_same_output(tiny_llama_dir: str, hf_greedy: list[list[int]]) -> None:
    small = LLM(model=tiny_llama_dir, num_kv_blocks_override=6, block_size=16)
    outs = small.generate(PROMPTS, GREEDY, use_tqdm=False)
    assert _ids(outs) == hf_greedy
    stats = small.llm_engine.get_stats()
    assert stats.num_preemptions > 0
    assert stats.num_free_blocks == stats.num_blocks == 6


def test_preemption_keeps_seeded_sampling(tiny_llama_dir: str, llm: LLM) -> None:
    params = [SamplingParams(temperature=1.0, max_tokens=32, seed=i, ignore_eos=True) for i in range(4)]
    ref = _ids(llm.generate(PROMPTS, params, use_tqdm=False))
    small = LLM(model=tiny_llama_dir, num_kv_blocks_override=6, block_size=16)
    assert _ids(small.generate(PROMPTS, params, use_tqdm=False)) == ref
    assert small.llm_engine.get_stats().num_preemptions > 0


def test_chunked_prefill_same_output(tiny_llama_dir: str, hf_greedy: list[list[int]]) -> None:
    chunked = LLM(model=tiny_llama_dir, max_num_batched_tokens=8, kv_cache_space_gib=0.02)
    assert _ids(chunked.generate(PROMPTS, GREEDY, use_tqdm=False)) == hf_greedy


def test_batch_1_vs_64(llm: LLM) -> None:
    rng = random.Random(0)
    prompts = [[rng.randrange(600) for _ in range(rng.randrange(1, 40))] for _ in range(64)]
    params = SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True)
    batched = _ids(llm.generate(prompts, params, use_tqdm=False))
    single = [_ids(llm.generate([p], params, use_tqdm=False))[0] for p in prompts]
    assert batched == single


def test_prefix_cache_hits(llm: LLM) -> None:
    before = llm.llm_engine.get_stats()
    shared = list(range(200, 248))
    prompts = [shared + [i] for i in range(4)]
    params = SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)
    llm.generate(prompts[:1], params, use_tqdm=False)
    outs = llm.generate(prompts[1:], params, use_tqdm=False)
    after = llm.llm_engine.get_stats()
    assert after.prefix_cache_hits - before.prefix_cache_hits >= 3 * 48
    assert all(o.num_cached_tokens == 48 for o in outs)


def test_n2_and_seeds(llm: LLM) -> None:
    params = SamplingParams(n=2, temperature=1.0, max_tokens=6, seed=7, ignore_eos=True)
    a = llm.generate([PROMPTS[0]], params, use_tqdm=False)[0]
    assert [c.index for c in a.outputs] == [0, 1]
    assert all(len(c.token_ids) == 6 for c in a.outputs)
    b = llm.generate([PROMPTS[0]], params, use_tqdm=False)[0]
    assert [c.token_ids for c in a.outputs] == [c.token_ids for c in b.outputs]  # seeded


def test_n2_greedy_shares_prompt_blocks(llm: LLM) -> None:
    prompt = list(range(300, 340))  # 2 full blocks of 16 + 8
    ref = _ids(llm.generate([prompt], GREEDY, use_tqdm=False))[0]
    llm.llm_engine.core.reset_prefix_cache()
    before = llm.llm_engine.get_stats().prefix_cache_hits
    out = llm.generate([prompt], SamplingParams(n=2, temperature=0.0, max_tokens=32, ignore_eos=True),
                       use_tqdm=False)[0]
    assert [c.token_ids for c in out.outputs] == [ref, ref]
    assert llm.llm_engine.get_stats().prefix_cache_hits - before == 32  # child 1 reused 2 blocks


def test_stop_strings(llm: LLM) -> None:
    base = llm.generate(["hello world"], SamplingParams(temperature=0.0, max_tokens=24,
                                                       ignore_eos=True), use_tqdm=False)[0]
    text = base.outputs[0].text
    assert len(text) > 6
    stop = text[3:6]
    cut = text.index(stop)
    out = llm.generate(["hello world"], SamplingParams(temperature=0.0, max_tokens=24, stop=[stop],
                                                      ignore_eos=True), use_tqdm=False)[0].outputs[0]
    assert out.text == text[:cut]
    assert out.finish_reason == "stop" and out.stop_reason == stop
    inc = llm.generate(["hello world"], SamplingParams(temperature=0.0, max_tokens=24, stop=[stop],
                                                      include_stop_str_in_output=True,
                                                      ignore_eos=True), use_tqdm=False)[0].outputs[0]
    assert inc.text == text[: cut + len(stop)]


def test_stop_token_and_eos(llm: LLM) -> None:
    ref = _ids(llm.generate([PROMPTS[1]], GREEDY, use_tqdm=False))[0]
    out = llm.generate([PROMPTS[1]], SamplingParams(temperature=0.0, max_tokens=32,
                                                    stop_token_ids=[ref[4]]), use_tqdm=False)[0]
    first = ref.index(ref[4])
    assert out.outputs[0].token_ids == ref[: first + 1]
    assert out.outputs[0].stop_reason == ref[4]


def test_bad_inputs_keep_engine_serving(llm: LLM) -> None:
    max_len = llm.llm_engine.input_processor.max_model_len
    with pytest.raises(ValueError, match="max_model_len"):
        llm.generate([[1] * (max_len + 1)], GREEDY, use_tqdm=False)
    with pytest.raises(ValueError, match="max_tokens"):
        SamplingParams(max_tokens=0)
    with pytest.raises(ValueError, match="n "):
        SamplingParams(n=1000)
    with pytest.raises(ValueError, match="prompt"):
        llm.generate([""], GREEDY, use_tqdm=False)
    with pytest.raises(ValueError, match="prompt"):
        llm.generate([[]], GREEDY, use_tqdm=False)
    with pytest.raises(ValueError, match="vocabulary"):
        llm.generate([[1, 10**7]], GREEDY, use_tqdm=False)
    with pytest.raises(ValueError, match="logprobs"):
        llm.generate([[1, 2]], SamplingParams(logprobs=1000), use_tqdm=False)
    assert not llm.llm_engine.has_unfinished_requests()
    assert len(llm.generate(PROMPTS, GREEDY, use_tqdm=False)) == 4


def test_logprobs(llm: LLM) -> None:
    out = llm.generate([PROMPTS[0]], SamplingParams(temperature=0.0, max_tokens=3, logprobs=2,
                                                    prompt_logprobs=1), use_tqdm=False)[0]
    comp = out.outputs[0]
    assert comp.logprobs is not None and len(comp.logprobs) == 3
    for tok, row in zip(comp.token_ids, comp.logprobs, strict=True):
        assert tok in row and row[tok].rank == 1  # greedy picks the top token
        assert len(row) == 2
    assert comp.cumulative_logprob == pytest.approx(sum(r[t].logprob for t, r in
                                                        zip(comp.token_ids, comp.logprobs, strict=True)))
    assert out.prompt_logprobs is not None and len(out.prompt_logprobs) == len(PROMPTS[0])
    assert out.prompt_logprobs[0] is None and PROMPTS[0][1] in out.prompt_logprobs[1]


def test_chat_and_beam_search(llm: LLM) -> None:
    from vllm.sampling_params import BeamSearchParams

    outs = llm.chat([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=4, temperature=0.0),
                    use_tqdm=False)
    assert len(outs) == 1 and len(outs[0].outputs[0].token_ids) >= 1
    beams = llm.beam_search([PROMPTS[0]], BeamSearchParams(beam_width=3, max_tokens=4))
    seqs = beams[0].sequences
    assert len(seqs) == 3
    greedy = _ids(llm.generate([PROMPTS[0]], SamplingParams(temperature=0.0, max_tokens=4,
                                                            ignore_eos=True), use_tqdm=False))[0]
    best = max(s.cum_logprob for s in seqs)
    assert all(s.tokens[: len(PROMPTS[0])] == PROMPTS[0] for s in seqs)
    assert best >= seqs[-1].cum_logprob and len(greedy) == 4
