"""HF ``architectures`` name -> model class, with out-of-tree registration.

In-tree models are named by ``module:Class`` and imported only when asked for. Plugins add
models through ``register_model`` directly or through the entry-point group
``vllm.general_plugins`` (each entry point is a zero-argument function, called once before the
first lookup, that calls ``register_model``).
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

import torch.nn as nn

logger = logging.getLogger(__name__)

_MODELS: dict[str, type[nn.Module] | str] = {
    "LlamaForCausalLM": "vllm.model_executor.models.llama:LlamaForCausalLM",
    "MistralForCausalLM": "vllm.model_executor.models.llama:LlamaForCausalLM",
    "Qwen2ForCausalLM": "vllm.model_executor.models.qwen2:Qwen2ForCausalLM",
    "Qwen3ForCausalLM": "vllm.model_executor.models.qwen3:Qwen3ForCausalLM",
    "GPT2LMHeadModel": "vllm.model_executor.models.gpt2:GPT2LMHeadModel",
    "Qwen3MoeForCausalLM": "vllm.model_executor.models.qwen3_moe:Qwen3MoeForCausalLM",
    "MixtralForCausalLM": "vllm.model_executor.models.mixtral:MixtralForCausalLM",
}
_plugins_loaded = False

PLUGIN_GROUP = "vllm.general_plugins"


def load_general_plugins() -> None:
    """Call every ``vllm.general_plugins`` entry point once per process."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            ep.load()()
        except Exception:  # a broken plugin must not take the engine down; say which one
            logger.exception("vllm plugin %r (%s) failed to load", ep.name, ep.value)


def register_model(architecture: str, cls_or_path: type[nn.Module] | str) -> None:
    """Register (or override) a model class, or a lazy ``'module:Class'`` path."""
    if not architecture:
        raise ValueError("register_model: architecture name must be non-empty")
    if isinstance(cls_or_path, str):
        if ":" not in cls_or_path:
            raise ValueError(f"register_model({architecture!r}): path {cls_or_path!r} must be 'module:Class'")
    elif not (isinstance(cls_or_path, type) and issubclass(cls_or_path, nn.Module)):
        raise ValueError(
            f"register_model({architecture!r}): expected an nn.Module subclass or 'module:Class'"
        )
    if architecture in _MODELS:
        logger.info("model architecture %s is overridden by %r", architecture, cls_or_path)
    _MODELS[architecture] = cls_or_path


def supported_architectures() -> list[str]:
    load_general_plugins()
    return sorted(_MODELS)


def get_model_class(architecture: str) -> type[nn.Module]:
    load_general_plugins()
    entry = _MODELS.get(architecture)
    if entry is None:
        raise ValueError(
            f"model architecture {architecture!r} is not supported; supported: "
            + ", ".join(sorted(_MODELS))
        )
    if isinstance(entry, str):
        module_name, _, cls_name = entry.partition(":")
        entry = getattr(importlib.import_module(module_name), cls_name)
        _MODELS[architecture] = entry
    return entry
