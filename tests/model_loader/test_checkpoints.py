"""The test-checkpoint factory and the locally trained tokenizer."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch
from safetensors import safe_open

from vllm.testing import checkpoints, tokenizer


def test_tokenizer_is_deterministic_and_roundtrips(tmp_path) -> None:
    from transformers import AutoTokenizer

    first = tokenizer._trained_json(640)
    tokenizer._trained_json.cache_clear()
    assert tokenizer._trained_json(640) == first
    tok = AutoTokenizer.from_pretrained(tokenizer.train_tokenizer(tmp_path, 640))
    assert len(tok) == tokenizer.tokenizer_vocab_size(640) == 640
    text = "Once upon a time, Café 日本語 🙂 costs $4.00!"
    ids = tok(text).input_ids
    assert tok.decode(ids) == text
    assert len(ids) < len(text.encode())  # merges were learned
    for special in tokenizer.SPECIAL_TOKENS:
        assert len(tok(special).input_ids) == 1
    assert tok.eos_token == tokenizer.IM_END and tok.bos_token == tokenizer.ENDOFTEXT


def test_tokenizer_chat_template(tmp_path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer.train_tokenizer(tmp_path))
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                    "<|im_start|>assistant\n")


def test_tokenizer_vocab_too_small(tmp_path) -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        tokenizer.train_tokenizer(tmp_path, 100)


@pytest.mark.parametrize("arch", sorted(checkpoints.ARCHS))
def test_checkpoint_loads_in_transformers_and_decodes(arch: str, make_tiny) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = make_tiny(arch)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.architectures == [checkpoints._model_class_name(arch)]
    assert model.config.vocab_size == len(tok)
    ids = tok("Once upon a time", return_tensors="pt").input_ids
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=32,
                         do_sample=False, eos_token_id=None, pad_token_id=0)
    new = out[0, ids.shape[1]:].tolist()
    assert len(new) == 32
    assert len(set(new)) >= 8, f"greedy decoding is degenerate: {new}"
    gen = json.load(open(os.path.join(path, "generation_config.json")))
    assert gen["eos_token_id"] == [tok.convert_tokens_to_ids("<|im_end|>"), tok.bos_token_id]


def _tensors(path: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name in sorted(os.listdir(path)):
        if name.endswith(".safetensors"):
            with safe_open(os.path.join(path, name), framework="pt") as f:
                out.update({k: f.get_tensor(k) for k in f.keys()})
    return out


def test_checkpoint_seeded_and_tied(tmp_path) -> None:
    a = _tensors(checkpoints.make_checkpoint("llama", tmp_path / "a", seed=3))
    b = _tensors(checkpoints.make_checkpoint("llama", tmp_path / "b", seed=3))
    c = _tensors(checkpoints.make_checkpoint("llama", tmp_path / "c", seed=4))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.embed_tokens.weight"], c["model.embed_tokens.weight"])
    assert "lm_head.weight" not in a  # tied by default
    untied = _tensors(checkpoints.make_checkpoint("llama", tmp_path / "u",
                                                  tie_word_embeddings=False))
    assert untied["lm_head.weight"].shape == untied["model.embed_tokens.weight"].shape
    norm = a["model.norm.weight"]
    assert 0.5 < norm.mean().item() < 1.5 and norm.std().item() > 0  # scale ~1, not all ones


def test_checkpoint_sharded_dtype_and_fast(tmp_path) -> None:
    checkpoints.make_checkpoint("qwen2", tmp_path / "warm")  # imports, tokenizer training
    start = time.perf_counter()
    path = checkpoints.make_checkpoint("qwen2", tmp_path / "s", dtype="bfloat16", shards=3)
    assert time.perf_counter() - start < 2.0
    index = json.load(open(os.path.join(path, "model.safetensors.index.json")))
    files = set(index["weight_map"].values())
    assert len(files) >= 2 and all(os.path.isfile(os.path.join(path, f)) for f in files)
    tensors = _tensors(path)
    assert set(tensors) == set(index["weight_map"])
    assert all(t.dtype == torch.bfloat16 for t in tensors.values())
    assert "model.layers.0.self_attn.q_proj.bias" in tensors  # qwen2 has qkv bias


def test_named_sizes_and_errors() -> None:
    cfg = checkpoints.build_config("llama", "llama-3.1-8b")
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size) == (4096, 32, 128256)
    assert cfg.rope_parameters["rope_type"] == "llama3" and not cfg.tie_word_embeddings
    smol = checkpoints.build_config("llama", "smollm2-135m")
    assert (smol.num_attention_heads, smol.num_key_value_heads, smol.tie_word_embeddings) == (
        9, 3, True)
    qwen = checkpoints.build_config("qwen2", "qwen2.5-0.5b")
    assert (qwen.hidden_size, qwen.vocab_size) == (896, 151936)
    with pytest.raises(ValueError, match="size="):
        checkpoints.build_config("qwen2", "llama-3.1-8b")
    with pytest.raises(ValueError, match="arch="):
        checkpoints.build_config("bert")
    with pytest.raises(ValueError, match="size="):
        checkpoints.build_config("llama", "huge")


def test_overrides(tmp_path) -> None:
    path = checkpoints.make_checkpoint("llama", tmp_path, num_hidden_layers=1, vocab_size=700)
    cfg = json.load(open(os.path.join(path, "config.json")))
    assert cfg["num_hidden_layers"] == 1 and cfg["vocab_size"] == 700


def test_cli(tmp_path, capsys) -> None:
    checkpoints.main(["qwen3", str(tmp_path / "cli"), "--shards", "2", "--untied", "--seed", "1"])
    path = capsys.readouterr().out.strip()
    assert path == str(tmp_path / "cli")
    cfg = json.load(open(os.path.join(path, "config.json")))
    assert cfg["architectures"] == ["Qwen3ForCausalLM"] and cfg["dtype"] == "float32"
    assert not cfg["tie_word_embeddings"]
    assert os.path.isfile(os.path.join(path, "model.safetensors.index.json"))
    assert not [n for n in os.listdir(path) if n.startswith(".staging")]
