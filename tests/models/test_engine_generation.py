"""Per architecture, through the whole engine (`vllm.LLM`): 4 prompts of different lengths batched
together, 32 greedy tokens identical to transformers `generate`, top-5 logprobs within 1e-3 (fp32)."""

from __future__ import annotations

import pytest

from tests.models.test_models import CASES, N_NEW, _prompt_ids
from tests.models.utils import hf_greedy, hf_top_logprobs
from vllm import LLM, SamplingParams

TOP = 5


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_engine_greedy_and_logprobs_match_hf(case: str, make_tiny) -> None:  # type: ignore[no-untyped-def]
    arch, kwargs = CASES[case]
    model_dir = make_tiny(arch, **kwargs)
    prompts = _prompt_ids(model_dir)
    want = hf_greedy(model_dir, prompts, N_NEW)

    llm = LLM(model=model_dir, dtype="float32", kv_cache_space_gib=0.02, seed=0)
    params = SamplingParams(temperature=0.0, max_tokens=N_NEW, ignore_eos=True, logprobs=TOP)
    outs = llm.generate(prompts, params, use_tqdm=False)  # one batch: all four scheduled together
    got = [list(o.outputs[0].token_ids) for o in outs]
    assert got == want, f"{case}: engine greedy tokens differ from transformers"

    for prompt, out in zip(prompts, outs, strict=True):
        # HF's top-5 at each generated position: score prompt + generated ids in one forward.
        hf_vals, hf_ids = hf_top_logprobs(model_dir, prompt + list(out.outputs[0].token_ids), TOP)
        hf_vals, hf_ids = hf_vals[len(prompt) - 1 : -1], hf_ids[len(prompt) - 1 : -1]  # [N_NEW, 5]
        for pos, position_logprobs in enumerate(out.outputs[0].logprobs or []):
            ours = {tid: lp.logprob for tid, lp in position_logprobs.items()}
            for rank in range(TOP):
                tid = int(hf_ids[pos, rank])
                assert tid in ours, f"{case} pos {pos}: HF top-{rank + 1} token {tid} missing"
                assert abs(ours[tid] - float(hf_vals[pos, rank])) < 1e-3, (
                    f"{case} pos {pos} token {tid}: logprob {ours[tid]} vs HF {float(hf_vals[pos, rank])}"
                )
        assert len(out.outputs[0].logprobs or []) == N_NEW
