"""get_tokenizer: HF folders, chat-template overrides, vocab mismatch."""

from __future__ import annotations

import pytest

from vllm.config import ModelConfig
from vllm.model_executor.model_loader import resolve_model
from vllm.transformers_utils.tokenizer import get_tokenizer

MSGS = [{"role": "user", "content": "Hi"}]


def test_folder_tokenizer(tiny_llama_dir: str) -> None:
    from transformers import AutoTokenizer

    tok = get_tokenizer(resolve_model(ModelConfig(model=tiny_llama_dir)))
    ref = AutoTokenizer.from_pretrained(tiny_llama_dir)
    text = "Once upon a time, Café 🙂 42!"
    assert tok.is_fast and tok(text).input_ids == ref(text).input_ids
    assert tok.apply_chat_template(MSGS, tokenize=False, add_generation_prompt=True) == \
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_chat_template_literal_and_file(tiny_llama_dir: str, tmp_path) -> None:
    resolved = resolve_model(ModelConfig(model=tiny_llama_dir))
    literal = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    tok = get_tokenizer(resolved, chat_template=literal)
    assert tok.apply_chat_template(MSGS, tokenize=False) == "[user] Hi\n"
    path = tmp_path / "t.jinja"
    path.write_text("{{ messages[0]['content'] | upper }}")
    tok = get_tokenizer(resolved, chat_template=str(path))
    assert tok.apply_chat_template(MSGS, tokenize=False) == "HI"
    with pytest.raises(ValueError, match="neither an existing file"):
        get_tokenizer(resolved, chat_template=str(tmp_path / "missing.jinja"))


def test_tokenizer_larger_than_embedding(make_tiny) -> None:
    folder = make_tiny("llama", vocab_size=300)  # tokenizer has 640 tokens
    with pytest.raises(ValueError, match=r"640 tokens.*vocab_size=300"):
        get_tokenizer(resolve_model(ModelConfig(model=folder)))


def test_larger_embedding_is_fine(make_tiny) -> None:
    folder = make_tiny("llama", vocab_size=1024)  # padded embedding, like real models
    assert len(get_tokenizer(resolve_model(ModelConfig(model=folder)))) == 640


def test_missing_tokenizer(tiny_llama_dir: str, tmp_path) -> None:
    resolved = resolve_model(ModelConfig(model=tiny_llama_dir, tokenizer=str(tmp_path)))
    with pytest.raises(ValueError, match="cannot load a tokenizer"):
        get_tokenizer(resolved)
