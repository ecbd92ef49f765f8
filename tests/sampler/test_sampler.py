"""Sampler: greedy, seeds, penalties, logit_bias, min_tokens, min-p, logprobs."""

from __future__ import annotations

import pytest
import torch

from vllm.model_executor.layers.sampler import (
    Sampler,
    SamplingRequestState,
    build_sampling_metadata,
    compute_prompt_logprobs,
)
from vllm.sampling_params import SamplingParams

V = 32
CPU = torch.device("cpu")


def _state(seed: int | None = None, prompt=(1, 2, 3), output=(), eos=None, **kw):  # type: ignore[no-untyped-def]
    params = SamplingParams(seed=seed, **kw)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return SamplingRequestState(params, list(prompt), list(output), gen, eos_token_id=eos)


def _run(logits: torch.Tensor, states: list[SamplingRequestState]):  # type: ignore[no-untyped-def]
    return Sampler()(logits, build_sampling_metadata(states, logits.shape[-1], CPU))


def _logits(n: int, seed: int = 0, vocab: int = V) -> torch.Tensor:
    return torch.randn(n, vocab, generator=torch.Generator().manual_seed(seed)) * 3


def test_greedy_is_argmax() -> None:
    logits = _logits(6)
    out = _run(logits, [_state(temperature=0.0) for _ in range(6)])
    assert out.sampled_token_ids.dtype == torch.int64
    assert torch.equal(out.sampled_token_ids, logits.argmax(-1))
    assert out.logprobs is None


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_plain_greedy_takes_model_dtype_logits(dtype: torch.dtype) -> None:
    """Plain greedy rows are argmaxed in the lm_head's dtype, padded vocab columns dropped;
    the result equals the argmax of the fp32 copy (bf16/fp16 -> fp32 is exact)."""
    logits = torch.cat([_logits(64, vocab=5000), torch.full((64, 8), 1e4)], dim=1).to(dtype)
    meta = build_sampling_metadata([_state(temperature=0.0) for _ in range(64)], 5000, CPU)
    assert meta.plain_greedy
    out = Sampler()(logits, meta).sampled_token_ids
    assert out.dtype == torch.int64
    assert torch.equal(out, logits[:, :5000].float().argmax(-1))
    # Anything beyond an argmax (here logprobs) is not plain: fp32 processing as before.
    assert not build_sampling_metadata([_state(temperature=0.0, logprobs=1)], 5000, CPU).plain_greedy


def test_logits_keep_model_dtype_only_when_asked() -> None:
    from vllm.model_executor.layers.logits_processor import LogitsProcessor, reuse_logits_buffer
    from vllm.model_executor.layers.vocab_embedding import ParallelLMHead

    head = ParallelLMHead(40, 16, dtype=torch.bfloat16)
    head.weight.data.normal_()
    h = torch.randn(3, 16, dtype=torch.bfloat16)
    plain, capped = LogitsProcessor(40), LogitsProcessor(40, soft_cap=30.0)
    assert plain(head, h).dtype == torch.float32
    with reuse_logits_buffer(keep_dtype=True):
        kept = plain(head, h)
        assert kept.dtype == torch.bfloat16 and kept.shape == (3, 40)
        assert capped(head, h).dtype == torch.float32  # a soft cap is applied in fp32
    torch.testing.assert_close(kept.float(), plain(head, h))


def test_mixed_greedy_and_random_rows() -> None:
    logits = _logits(4)
    states = [_state(temperature=0.0), _state(seed=1), _state(temperature=0.0), _state(seed=2)]
    out = _run(logits, states).sampled_token_ids
    assert out[0] == logits[0].argmax() and out[2] == logits[2].argmax()


def _seeded_tokens(batch_builder, steps: int = 5) -> list[int]:  # type: ignore[no-untyped-def]
    """Tokens of the request under test (row 'row') across steps with its own generator."""
    target = _state(seed=1234, temperature=0.9, top_k=20, top_p=0.9)
    tokens = []
    for step in range(steps):
        states, row = batch_builder(target)
        logits = torch.stack([_logits(1, seed=100 + step)[0] if s is target
                              else _logits(1, seed=7 * step + i)[0] for i, s in enumerate(states)])
        tokens.append(int(_run(logits, states).sampled_token_ids[row]))
    return tokens


def test_seed_reproduces_across_batch_compositions() -> None:
    alone = _seeded_tokens(lambda t: ([t], 0))
    mixed = _seeded_tokens(lambda t: ([_state(), _state(seed=5, min_p=0.1), t,
                                       _state(temperature=0.0, presence_penalty=1.0)], 2))
    last = _seeded_tokens(lambda t: ([_state(temperature=0.5)] * 3 + [t], 3))
    assert alone == mixed == last
    assert _seeded_tokens(lambda t: ([t], 0)) == alone  # a fresh generator repeats the run


def test_sampling_follows_the_distribution() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    n = 4000
    logits = probs.log().expand(n, 4).clone()
    states = [_state(seed=i) for i in range(200)] + [_state() for _ in range(n - 200)]
    torch.manual_seed(0)
    toks = _run(logits, states).sampled_token_ids
    freq = torch.bincount(toks, minlength=4).float() / n
    torch.testing.assert_close(freq, probs, atol=0.03, rtol=0)


def test_temperature_sharpens() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).expand(2000, 4).clone()
    torch.manual_seed(0)
    cold = _run(logits, [_state(temperature=0.2) for _ in range(2000)]).sampled_token_ids
    assert (cold == 0).float().mean() > 0.95


def test_min_p_never_samples_below_threshold() -> None:
    probs = torch.tensor([0.4, 0.3, 0.2, 0.06, 0.04])
    logits = probs.log().expand(500, 5).clone()
    torch.manual_seed(0)
    toks = _run(logits, [_state(min_p=0.2) for _ in range(500)]).sampled_token_ids
    assert set(toks.tolist()) == {0, 1, 2}  # 0.06 and 0.04 < 0.2 * 0.4


def test_top_k_limits_samples() -> None:
    logits = torch.zeros(300, V)
    logits[:, 5], logits[:, 9] = 1.0, 0.9
    torch.manual_seed(0)
    toks = _run(logits, [_state(top_k=2) for _ in range(300)]).sampled_token_ids
    assert set(toks.tolist()) == {5, 9}


def _reference_penalties(logits: torch.Tensor, st: SamplingRequestState) -> torch.Tensor:
    """Straightforward per-request definition (OpenAI presence/frequency, CTRL repetition)."""
    p, out = st.params, logits.clone().double()
    for tok in set(st.prompt_token_ids) | set(st.output_token_ids):
        if p.repetition_penalty != 1.0:
            out[tok] = out[tok] / p.repetition_penalty if out[tok] > 0 else out[tok] * p.repetition_penalty
    for tok in set(st.output_token_ids):
        count = st.output_token_ids.count(tok)
        out[tok] -= p.frequency_penalty * count + p.presence_penalty
    return out


def test_penalties_match_reference() -> None:
    logits = _logits(5, seed=3)
    states = [
        _state(temperature=0.0, prompt=[1, 2, 2, 3], output=[3, 4, 4, 4], repetition_penalty=1.3),
        _state(temperature=0.0, prompt=[5], output=[6, 6, 7], frequency_penalty=0.5),
        _state(temperature=0.0, prompt=[], output=[8, 9, 9], presence_penalty=-1.5),
        _state(temperature=0.0, prompt=[10, 11], output=[], repetition_penalty=0.7,
               presence_penalty=0.3, frequency_penalty=0.2),
        _state(temperature=0.0, prompt=[12, 13, 14, 15, 16], output=[12, 20]),  # no penalty
    ]
    meta = build_sampling_metadata(states, V, CPU)
    got = Sampler.process_logits(logits, meta)
    for row, st in enumerate(states):
        torch.testing.assert_close(got[row].double(), _reference_penalties(logits[row], st),
                                   atol=1e-5, rtol=1e-5)


def test_logit_bias() -> None:
    logits = _logits(2, seed=4)
    states = [_state(temperature=0.0, logit_bias={7: 100.0}),
              _state(temperature=0.0, logit_bias={int(logits[1].argmax()): -100.0, 3: 0.5})]
    meta = build_sampling_metadata(states, V, CPU)
    got = Sampler.process_logits(logits, meta)
    expected = logits.clone()
    expected[0, 7] += 100.0
    expected[1, logits[1].argmax()] -= 100.0
    expected[1, 3] += 0.5
    torch.testing.assert_close(got, expected)
    assert int(_run(logits, states).sampled_token_ids[0]) == 7


def test_min_tokens_masks_stop_and_eos_until_reached() -> None:
    logits = torch.zeros(4, V)
    logits[:, 2] = 10.0  # eos would win greedily
    logits[:, 3] = 9.0  # a stop token id
    states = [
        _state(temperature=0.0, eos=2, output=[5], min_tokens=3, stop_token_ids=[3]),
        _state(temperature=0.0, eos=2, output=[5, 6, 7], min_tokens=3),  # reached: eos allowed
        _state(temperature=0.0, eos=2, output=[], min_tokens=2),  # eos masked, 3 wins
        _state(temperature=0.0, eos=2, output=[], min_tokens=2, ignore_eos=True),
    ]
    toks = _run(logits, states).sampled_token_ids.tolist()
    assert toks[0] not in (2, 3)
    assert toks[1] == 2
    assert toks[2] == 3
    assert toks[3] == 2  # with ignore_eos the eos id is not a stop token, so not masked


def test_logprobs_values_and_ranks() -> None:
    logits = _logits(3, seed=5)
    states = [_state(temperature=0.0, logprobs=3), _state(seed=9, logprobs=0),
              _state(temperature=0.0, presence_penalty=2.0, output=[int(logits[2].argmax())])]
    out = _run(logits, states)
    lp = out.logprobs
    assert lp is not None and lp.token_ids.shape == (3, 4) and lp.logprobs.shape == (3, 4)
    processed = Sampler.process_logits(logits, build_sampling_metadata(states, V, CPU))
    ref = processed.log_softmax(-1)
    assert torch.equal(lp.token_ids[:, 0], out.sampled_token_ids)
    for row in range(3):
        tok = int(out.sampled_token_ids[row])
        torch.testing.assert_close(lp.logprobs[row, 0], ref[row, tok])
        top = ref[row].topk(3)
        assert lp.token_ids[row, 1:].tolist() == top.indices.tolist()
        torch.testing.assert_close(lp.logprobs[row, 1:], top.values)
        assert int(lp.ranks[row]) == int((ref[row] > ref[row, tok]).sum()) + 1
    assert int(lp.ranks[0]) == 1  # greedy token is the most likely one
    # Row 2's penalty moved its argmax: logprobs describe the post-penalty distribution.
    assert int(lp.token_ids[2, 1]) != int(logits[2].argmax())


def test_prompt_logprobs() -> None:
    logits = _logits(4, seed=6)
    targets = torch.tensor([1, 2, 3, 4])
    lp = compute_prompt_logprobs(logits, targets, 2)
    ref = logits.log_softmax(-1)
    torch.testing.assert_close(lp.logprobs[:, 0], ref[torch.arange(4), targets])
    assert lp.token_ids.shape == (4, 3) and torch.equal(lp.token_ids[:, 0], targets)
    assert lp.ranks.tolist() == [int((ref[i] > ref[i, t]).sum()) + 1 for i, t in enumerate(targets)]


def test_padded_vocab_never_sampled() -> None:
    logits = torch.zeros(50, V + 8)
    logits[:, V:] = 100.0  # padding columns of the lm_head
    out = Sampler()(logits, build_sampling_metadata([_state() for _ in range(50)], V, CPU))
    assert int(out.sampled_token_ids.max()) < V


def test_errors() -> None:
    with pytest.raises(ValueError, match="rows"):
        _run(_logits(2), [_state()])
    with pytest.raises(ValueError, match="logit_bias"):
        build_sampling_metadata([_state(logit_bias={V + 5: 1.0})], V, CPU)


def test_params_clone_is_independent() -> None:
    """clone() copies the mutable fields (the engine clones each request's params)."""
    p = SamplingParams(temperature=0.5, stop=["x"], stop_token_ids=[3], logit_bias={1: 2.0}, seed=7)
    q = p.clone()
    assert q == p and q is not p
    q.stop.append("y")
    q.stop_token_ids.append(4)
    assert q.logit_bias is not None
    q.logit_bias[5] = 1.0
    assert p.stop == ["x"] and p.stop_token_ids == [3] and p.logit_bias == {1: 2.0}
    assert SamplingParams().clone().logit_bias is None
