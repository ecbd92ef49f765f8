"""Model registry: lookup, unknown architectures, out-of-tree registration and plugins."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from vllm.model_executor.models import registry
from vllm.model_executor.models.registry import get_model_class, register_model, supported_architectures


@pytest.fixture(autouse=True)
def _restore_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))


def test_in_tree_architectures() -> None:
    archs = supported_architectures()
    for name in ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                 "GPT2LMHeadModel", "Qwen3MoeForCausalLM", "MixtralForCausalLM"):
        assert name in archs
        cls = get_model_class(name)
        assert issubclass(cls, nn.Module)
        for method in ("forward", "compute_logits", "load_weights"):
            assert callable(getattr(cls, method))
    assert get_model_class("MistralForCausalLM") is get_model_class("LlamaForCausalLM")


def test_unknown_architecture_lists_supported() -> None:
    with pytest.raises(ValueError, match=r"'FooForCausalLM' is not supported; supported: .*LlamaForCausalLM"):
        get_model_class("FooForCausalLM")


class TinyOOT(nn.Module):
    def __init__(self, hf_config: object, dtype: torch.dtype = torch.float32, prefix: str = "") -> None:
        super().__init__()


def test_register_model_class_and_path() -> None:
    register_model("TinyOOTForCausalLM", TinyOOT)
    assert get_model_class("TinyOOTForCausalLM") is TinyOOT
    assert "TinyOOTForCausalLM" in supported_architectures()
    register_model("LazyOOT", f"{__name__}:TinyOOT")  # resolved lazily
    assert get_model_class("LazyOOT") is TinyOOT


def test_register_model_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="module:Class"):
        register_model("X", "no_colon_here")
    with pytest.raises(ValueError, match="nn.Module subclass"):
        register_model("X", int)  # type: ignore[arg-type]


def test_general_plugins_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def plugin() -> None:
        calls.append(1)
        register_model("PluginForCausalLM", TinyOOT)

    def broken() -> None:
        raise RuntimeError("boom")

    eps = [SimpleNamespace(name="good", value="x:plugin", load=lambda: plugin),
           SimpleNamespace(name="bad", value="x:broken", load=lambda: broken)]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps if group == registry.PLUGIN_GROUP else [])
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    assert get_model_class("PluginForCausalLM") is TinyOOT  # broken plugin logged, not fatal
    get_model_class("PluginForCausalLM")
    assert calls == [1]  # called once per process
