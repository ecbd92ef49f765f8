"""load_model: class lookup, construction in the run dtype, weights streamed in, clear errors.

Most tests use a small stand-in model registered for the test (so they check the loader, not a
particular model implementation); one uses the in-tree Llama."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable

import pytest
import torch
from safetensors.torch import load_file, save_file

from vllm.config import ModelConfig
from vllm.model_executor.model_loader import check_and_copy, load_model, resolve_model

registry = pytest.importorskip("vllm.model_executor.models.registry")


class StandIn(torch.nn.Module):
    """An nn.Module with the HF parameter names of a checkpoint's config, loading via
    check_and_copy and raising on unknown/missing tensors, as the model contract asks."""

    built_with: dict = {}

    def __init__(self, hf_config, dtype: torch.dtype) -> None:
        super().__init__()
        from transformers import AutoModelForCausalLM

        StandIn.built_with = {"dtype": dtype, "default": torch.get_default_dtype(),
                              "device": torch.empty(0).device}
        self.inner = AutoModelForCausalLM.from_config(hf_config, dtype=dtype)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        params = dict(self.inner.named_parameters())
        loaded = set()
        for name, tensor in weights:
            if name not in params:
                raise ValueError(f"unexpected checkpoint tensor {name!r}")
            check_and_copy(name, params[name], tensor)
            loaded.add("inner." + name)
        return loaded


@pytest.fixture
def stand_in(monkeypatch) -> None:
    monkeypatch.setitem(registry._MODELS, "LlamaForCausalLM", StandIn)


def _rewrite(src: str, dst, edit) -> str:
    shutil.copytree(src, dst)
    path = os.path.join(dst, "model.safetensors")
    state = load_file(path)
    edit(state)
    save_file(state, path, metadata={"format": "pt"})
    return str(dst)


def test_load_builds_in_run_dtype(stand_in, tiny_llama_untied_dir: str) -> None:
    resolved = resolve_model(ModelConfig(model=tiny_llama_untied_dir, dtype="bfloat16"))
    model = load_model(resolved, torch.device("cpu"))
    assert StandIn.built_with["dtype"] == torch.bfloat16
    assert StandIn.built_with["default"] == torch.bfloat16  # default dtype set while building
    assert torch.get_default_dtype() == torch.float32  # ... and restored
    assert not model.training
    state = load_file(os.path.join(tiny_llama_untied_dir, "model.safetensors"))
    params = dict(model.inner.named_parameters())
    for name, tensor in state.items():
        assert params[name].dtype == torch.bfloat16
        assert torch.equal(params[name], tensor.to(torch.bfloat16)), name


def test_missing_tensor(stand_in, tiny_llama_untied_dir: str, tmp_path) -> None:
    folder = _rewrite(tiny_llama_untied_dir, tmp_path / "m",
                      lambda s: s.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(ValueError, match=r"missing weights for: inner\.model\.layers\.1\.mlp"):
        load_model(resolve_model(ModelConfig(model=folder)), torch.device("cpu"))


def test_mismatched_tensor(stand_in, tiny_llama_dir: str, tmp_path) -> None:
    def edit(state):
        state["model.layers.0.self_attn.q_proj.weight"] = torch.zeros(32, 64)

    folder = _rewrite(tiny_llama_dir, tmp_path / "m", edit)
    with pytest.raises(ValueError, match=r"q_proj.weight'.*\(32, 64\).*\(64, 64\)"):
        load_model(resolve_model(ModelConfig(model=folder)), torch.device("cpu"))


def test_unsupported_architecture(tiny_llama_dir: str, tmp_path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_llama_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["FancyNewForCausalLM"]
    (folder / "config.json").write_text(json.dumps(cfg))
    resolved = resolve_model(ModelConfig(model=str(folder)))
    assert resolved.architecture == "FancyNewForCausalLM"
    with pytest.raises(ValueError, match="FancyNewForCausalLM.*not supported.*LlamaForCausalLM"):
        load_model(resolved, torch.device("cpu"))


def test_in_tree_llama_loads_and_rejects_missing(tiny_llama_dir: str, tmp_path) -> None:
    resolved = resolve_model(ModelConfig(model=tiny_llama_dir))  # fp32, or the platform's choice
    model = load_model(resolved, torch.device("cpu"))
    assert not model.training
    assert all(p.dtype == resolved.dtype for p in model.parameters())
    folder = _rewrite(tiny_llama_dir, tmp_path / "m",
                      lambda s: s.pop("model.layers.0.post_attention_layernorm.weight"))
    with pytest.raises(ValueError, match="post_attention_layernorm"):
        load_model(resolve_model(ModelConfig(model=folder)), torch.device("cpu"))
