"""Helpers shared by the model files: config reading and checkpoint-name matching."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn as nn

from vllm.model_executor.layers.linear import copy_checked
from vllm.model_executor.layers.rotary_embedding import RotaryEmbedding, get_rope

# (param name fragment, checkpoint name fragment, shard id): checkpoint tensors that are fused
# into one parameter of ours.
StackedMapping = list[tuple[str, str, Any]]

LLAMA_STACKED: StackedMapping = [
    (".qkv_proj.", ".q_proj.", "q"),
    (".qkv_proj.", ".k_proj.", "k"),
    (".qkv_proj.", ".v_proj.", "v"),
    (".gate_up_proj.", ".gate_proj.", 0),
    (".gate_up_proj.", ".up_proj.", 1),
]


def rope_config(hf_config: Any) -> tuple[float, dict[str, Any] | None]:
    """(rope_theta, scaling dict or None), from transformers 5's ``rope_parameters`` or the older
    ``rope_theta`` / ``rope_scaling`` attributes."""
    params = getattr(hf_config, "rope_parameters", None) or {}
    legacy = getattr(hf_config, "rope_scaling", None) or {}
    theta = params.get("rope_theta") or getattr(hf_config, "rope_theta", None) or 10000.0
    scaling = {k: v for k, v in {**legacy, **params}.items() if k != "rope_theta"}
    kind = scaling.get("rope_type") or scaling.get("type") or "default"
    return float(theta), (scaling if kind != "default" else None)


_rope_scope: contextvars.ContextVar[dict[tuple, RotaryEmbedding] | None] = contextvars.ContextVar(
    "rope_scope", default=None
)


@contextlib.contextmanager
def shared_rope_scope() -> Iterator[None]:
    """Within one model's construction, identical rotary embeddings are built once and shared
    by every layer (the cos/sin cache of a 128k-context model is ~64 MiB per copy)."""
    token = _rope_scope.set({})
    try:
        yield
    finally:
        _rope_scope.reset(token)


def get_shared_rope(
    head_size: int, rotary_dim: int, max_position: int, base: float, is_neox_style: bool,
    rope_scaling: dict[str, Any] | None, dtype: torch.dtype,
) -> RotaryEmbedding:
    """``get_rope``, reusing an identical instance inside ``shared_rope_scope``."""
    key = (head_size, rotary_dim, max_position, base, is_neox_style, repr(rope_scaling), dtype)
    cache = _rope_scope.get()
    if cache is None:
        return get_rope(head_size, rotary_dim, max_position, base, is_neox_style, rope_scaling, dtype)
    if key not in cache:
        cache[key] = get_rope(head_size, rotary_dim, max_position, base, is_neox_style, rope_scaling, dtype)
    return cache[key]


def head_dim(hf_config: Any) -> int:
    return getattr(hf_config, "head_dim", None) or hf_config.hidden_size // hf_config.num_attention_heads


def default_weight_loader(param: nn.Parameter, loaded_weight: torch.Tensor, shard_id: Any = None) -> None:
    copy_checked(param.data, loaded_weight, getattr(param, "param_name", "?"))


def load_by_name(
    model: nn.Module,
    weights: Iterable[tuple[str, torch.Tensor]],
    stacked: StackedMapping = (),  # type: ignore[assignment]
    skip: Callable[[str], bool] = lambda name: False,
    rename: Callable[[str], str] = lambda name: name,
    special: Callable[[str, torch.Tensor, dict[str, nn.Parameter]], str | None] | None = None,
) -> set[str]:
    """Copy HF-named checkpoint tensors into ``model``'s parameters; returns the names loaded.

    ``special(name, tensor, params)`` may handle a tensor itself and return the parameter name
    (or None to fall through). Unknown tensors and parameters left unloaded raise ValueError."""
    params = dict(model.named_parameters(remove_duplicate=False))
    for pname, p in params.items():
        if not hasattr(p, "param_name"):
            p.param_name = pname  # type: ignore[attr-defined]
    loaded: set[str] = set()
    for ckpt_name, tensor in weights:
        if skip(ckpt_name):
            continue
        name = rename(ckpt_name)
        target = special(name, tensor, params) if special is not None else None
        if target is None:
            target = _load_one(name, tensor, params, stacked)
        if target is None:
            owner = type(model).__name__
            raise ValueError(f"checkpoint tensor {ckpt_name!r} matches no parameter of {owner}")
        loaded.add(target)
    check_all_loaded(model, params, loaded)
    return loaded


def _load_one(
    name: str, tensor: torch.Tensor, params: dict[str, nn.Parameter], stacked: StackedMapping
) -> str | None:
    for param_frag, ckpt_frag, shard_id in stacked:
        if ckpt_frag in name:
            fused = name.replace(ckpt_frag, param_frag)
            if fused in params:
                params[fused].weight_loader(params[fused], tensor, shard_id)  # type: ignore[attr-defined]
                return fused
    if name in params:
        param = params[name]
        getattr(param, "weight_loader", default_weight_loader)(param, tensor)
        return name
    return None


def check_all_loaded(model: nn.Module, params: dict[str, nn.Parameter], loaded: set[str]) -> None:
    """Every parameter (shared ones counted once) must have been loaded."""
    loaded_ids = {id(params[n]) for n in loaded}
    missing = sorted(n for n, p in params.items() if id(p) not in loaded_ids)
    if missing:
        shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise ValueError(f"checkpoint is missing {len(missing)} tensor(s) of {type(model).__name__}: {shown}")
