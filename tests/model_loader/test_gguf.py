"""GGUF: dequantizers vs gguf.quants, our reader vs GGUFReader, config/tokenizer/tensors vs
transformers on the real SmolLM2 file, and a round trip of tiny checkpoints through GGUF."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader
from gguf import quants as gq

from vllm.config import ModelConfig
from vllm.model_executor.model_loader import iter_weights, resolve_model
from vllm.model_executor.model_loader.gguf_dequant import dequantize
from vllm.model_executor.model_loader.gguf_loader import gguf_config, hf_name, unpermute_qk
from vllm.model_executor.model_loader.gguf_reader import read_gguf
from vllm.platforms import current_platform
from vllm.testing.gguf_writer import permute_qk, write_gguf
from vllm.transformers_utils.tokenizer import get_tokenizer

TEXTS = ["Once upon a time", "What is the capital of France?", "  two spaces\n\nnewlines\ttab",
         "Café naïve 日本語 🙂 12345 678", "<|im_start|>user\nhi<|im_end|>", "don't I'll we've"]


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.F16, Q.BF16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dequantize_matches_gguf(qtype: Q, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 96)).astype(np.float32) * 3  # [rows, 3 blocks]
    x[0, :32] = 0.0  # an all-zero block (scale 0)
    raw = gq.quantize(x, qtype)
    expected = torch.from_numpy(gq.dequantize(raw, qtype).astype(np.float32)).to(dtype)
    ours = dequantize(raw, int(qtype), (6, 96), dtype)
    assert ours.shape == (6, 96) and ours.dtype == dtype
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)


def test_dequantize_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="not supported"):
        dequantize(np.zeros(64, np.uint8), int(Q.Q2_K), (1, 256))
    with pytest.raises(ValueError, match="multiple of 32"):
        dequantize(np.zeros(40, np.uint8), int(Q.Q8_0), (1, 20))
    with pytest.raises(ValueError, match="truncated"):
        dequantize(np.zeros(34, np.uint8), int(Q.Q8_0), (1, 64))


def test_unpermute_inverts_llama_cpp_permutation() -> None:
    w = torch.arange(8 * 16 * 3, dtype=torch.float32).reshape(8 * 16, 3)  # 8 heads, dim 16
    permuted = torch.from_numpy(permute_qk(w.numpy(), 8))
    assert not torch.equal(permuted, w)
    assert torch.equal(unpermute_qk(permuted, 8), w)
    bias = torch.arange(32, dtype=torch.float32)
    assert torch.equal(unpermute_qk(torch.from_numpy(permute_qk(bias.numpy(), 4)), 4), bias)


def test_names() -> None:
    assert hf_name("token_embd.weight") == "model.embed_tokens.weight"
    assert hf_name("blk.7.attn_q.weight") == "model.layers.7.self_attn.q_proj.weight"
    assert hf_name("blk.0.ffn_down.weight") == "model.layers.0.mlp.down_proj.weight"
    assert hf_name("blk.3.attn_k.bias") == "model.layers.3.self_attn.k_proj.bias"
    assert hf_name("output_norm.weight") == "model.norm.weight"
    assert hf_name("output.weight") == "lm_head.weight"
    assert hf_name("rope_freqs.weight") is None


def test_not_a_gguf_file(tmp_path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(ValueError, match="not a GGUF file"):
        resolve_model(ModelConfig(model=str(bad)))
    short = tmp_path / "short.gguf"
    short.write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(4))
    with pytest.raises(ValueError, match="truncated"):
        resolve_model(ModelConfig(model=str(short)))


# ---- tiny checkpoints round-tripped through GGUF ------------------------------------------
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("qtype", ["F32", "Q8_0", "Q4_1"])
def test_tiny_roundtrip(arch: str, qtype: str, make_tiny, tmp_path) -> None:
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    folder = make_tiny(arch)
    path = write_gguf(folder, str(tmp_path / f"{arch}.gguf"), qtype)
    resolved = resolve_model(ModelConfig(model=path))
    ref_cfg = AutoConfig.from_pretrained(folder)
    cfg = resolved.hf_config
    assert resolved.gguf_file == path and resolved.architecture == ref_cfg.architectures[0]
    for field in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "intermediate_size", "vocab_size", "rms_norm_eps",
                  "tie_word_embeddings", "max_position_embeddings"):
        assert getattr(cfg, field) == pytest.approx(getattr(ref_cfg, field)), field
    assert cfg.rope_parameters["rope_theta"] == ref_cfg.rope_parameters["rope_theta"]
    state = load_file(os.path.join(folder, "model.safetensors"))
    ours = dict(iter_weights(resolved))
    assert set(ours) == set(state)
    run_dtype = resolved.dtype  # the platform's choice for an fp32 checkpoint (fp16 on CUDA)
    for name, ref in state.items():
        assert ours[name].dtype == run_dtype, name
        if qtype == "F32" or ref.dim() == 1:
            assert torch.equal(ours[name], ref.to(run_dtype)), name
        else:  # quantized: equal to what the format can hold
            raw = gq.quantize(ref.numpy(), Q[qtype])
            expected = torch.from_numpy(gq.dequantize(raw, Q[qtype]))
            if arch == "llama" and (".q_proj." in name or ".k_proj." in name):
                heads = cfg.num_attention_heads if ".q_proj." in name else cfg.num_key_value_heads
                expected = torch.from_numpy(gq.dequantize(
                    gq.quantize(permute_qk(ref.numpy(), heads), Q[qtype]), Q[qtype]))
                expected = unpermute_qk(expected, heads)
            assert torch.equal(ours[name], expected.to(run_dtype)), name
    tok, ref_tok = get_tokenizer(resolved), AutoTokenizer.from_pretrained(folder)
    for text in TEXTS:
        assert tok(text).input_ids == ref_tok(text).input_ids, text
    msgs = [{"role": "user", "content": "Hi"}]
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == \
        ref_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


# ---- the real SmolLM2-135M-Instruct file --------------------------------------------------
def test_smollm2_resolves_fast(smollm2_gguf: str) -> None:
    resolved = resolve_model(ModelConfig())
    cfg = resolved.hf_config
    assert resolved.path == resolved.gguf_file == resolved.tokenizer_path == smollm2_gguf
    assert resolved.architecture == "LlamaForCausalLM"
    assert resolved.dtype == current_platform.default_dtype(torch.float32)
    assert (resolved.max_model_len, resolved.vocab_size) == (8192, 49152)
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,
            cfg.num_key_value_heads, cfg.intermediate_size, cfg.head_dim) == (576, 30, 9, 3, 1536, 64)
    assert cfg.tie_word_embeddings and resolved.generation_config["eos_token_id"] == 2
    assert resolve_model(ModelConfig(max_model_len=2048)).max_model_len == 2048
    tok = get_tokenizer(resolved)
    assert tok("Once upon a time").input_ids == [6403, 1980, 253, 655]
    assert tok.eos_token == "<|im_end|>" and tok.chat_template


@pytest.mark.slow
def test_reader_matches_gguf_reader(smollm2_gguf: str) -> None:
    ours = read_gguf(smollm2_gguf)
    ref = GGUFReader(smollm2_gguf)
    for key, field in ref.fields.items():
        if not key.startswith("GGUF."):
            assert ours.metadata[key] == field.contents(), key
    assert [t.name for t in ours.tensors] == [t.name for t in ref.tensors]
    for a, b in zip(ours.tensors, ref.tensors, strict=True):
        assert a.qtype == int(b.tensor_type) and a.shape == tuple(reversed(b.shape.tolist()))
    for i in (0, 1, 5, len(ref.tensors) - 1):
        assert np.array_equal(np.asarray(ours.tensors[i].raw).view(np.uint8).ravel(),
                              np.asarray(ref.tensors[i].data).view(np.uint8).ravel())


@pytest.mark.slow
def test_smollm2_config_matches_transformers(smollm2_gguf: str) -> None:
    from transformers import AutoConfig

    folder, name = os.path.split(smollm2_gguf)
    ref = AutoConfig.from_pretrained(folder, gguf_file=name)
    ours = gguf_config(smollm2_gguf)
    assert ours.architectures == ["LlamaForCausalLM"]
    for field in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                  "num_key_value_heads", "intermediate_size", "vocab_size", "head_dim",
                  "max_position_embeddings", "rms_norm_eps", "tie_word_embeddings",
                  "bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(ours, field) == getattr(ref, field), field
    assert ours.rope_parameters["rope_theta"] == ref.rope_parameters["rope_theta"] == 100000.0


@pytest.mark.slow
def test_smollm2_tokenizer_matches_transformers(smollm2_gguf: str) -> None:
    from transformers import AutoTokenizer

    folder, name = os.path.split(smollm2_gguf)
    ref = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tok = get_tokenizer(resolve_model(ModelConfig(model=smollm2_gguf)))
    assert len(tok) == len(ref) == 49152 and tok.get_vocab() == ref.get_vocab()
    for text in TEXTS:
        ids = tok(text).input_ids
        assert ids == ref(text).input_ids, text
        assert tok.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)
    assert tok("Once upon a time").input_ids == [6403, 1980, 253, 655]
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (ref.bos_token, ref.eos_token,
                                                             ref.pad_token)
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    rendered = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert rendered == ref.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>assistant\n")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_smollm2_tensors_match_transformers(smollm2_gguf: str) -> None:
    from transformers import AutoModelForCausalLM

    folder, name = os.path.split(smollm2_gguf)
    ref = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    ref_sd = ref.state_dict()
    wanted = {"model.embed_tokens.weight", "model.norm.weight",
              "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
              "model.layers.0.self_attn.v_proj.weight", "model.layers.0.mlp.down_proj.weight",
              "model.layers.29.self_attn.q_proj.weight", "model.layers.29.input_layernorm.weight"}
    seen = set()
    for hf, tensor in iter_weights(resolve_model(ModelConfig(model=smollm2_gguf))):
        if hf in wanted:
            assert torch.equal(tensor, ref_sd[hf]), hf
            seen.add(hf)
    assert seen == wanted


def _toy_vocab(**extra):
    meta = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": ["<s>", "</s>", "a", "b", "ab"],
            "tokenizer.ggml.merges": ["a b"], "tokenizer.ggml.token_type": [3, 3, 1, 1, 1],
            "tokenizer.ggml.bos_token_id": 0, "tokenizer.ggml.eos_token_id": 1}
    meta.update(extra)
    return meta


def test_gguf_tokenizer_bos_and_errors() -> None:
    from vllm.model_executor.model_loader.gguf_tokenizer import gguf_tokenizer

    assert gguf_tokenizer(_toy_vocab())("abab").input_ids == [4, 4]
    tok = gguf_tokenizer(_toy_vocab(**{"tokenizer.ggml.add_bos_token": True}))
    assert tok("abab").input_ids == [0, 4, 4] and tok.eos_token == "</s>"
    with pytest.raises(ValueError, match="'llama' is not supported"):
        gguf_tokenizer(_toy_vocab(**{"tokenizer.ggml.model": "llama"}))
