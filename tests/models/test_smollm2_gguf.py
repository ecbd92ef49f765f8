"""The real embedded model (SmolLM2-135M-Instruct, Q4_1 GGUF): our greedy tokens equal
transformers' on the same file (both dequantize to float32)."""

from __future__ import annotations

import os

import pytest
import torch

from tests.models.utils import hf_greedy, hf_logits, load_our_model, our_greedy, our_logits

torch.set_num_threads(2)
N_NEW = 16


@pytest.mark.slow
def test_smollm2_gguf_greedy_matches_transformers(smollm2_gguf: str) -> None:
    from transformers import AutoTokenizer

    folder, name = os.path.split(smollm2_gguf)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    story = tok("Once upon a time")["input_ids"]
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True,
        tokenize=True,
    )
    chat = list(chat["input_ids"] if isinstance(chat, dict) or hasattr(chat, "keys") else chat)
    model = load_our_model(smollm2_gguf, torch.float32)
    torch.testing.assert_close(
        our_logits(model, story), hf_logits(folder, story, gguf_file=name), atol=2e-3, rtol=0
    )
    expected = hf_greedy(folder, [story, chat], N_NEW, gguf_file=name)
    for ids, ref in zip([story, chat], expected, strict=False):
        assert our_greedy(model, ids, N_NEW) == ref
    assert "Paris" in tok.decode(expected[1])
