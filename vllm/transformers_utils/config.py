"""Load a transformers config from a local folder; remote code is never executed."""

from __future__ import annotations

import os
from typing import Any

import torch


def get_hf_config(path: str, revision: str | None = None):
    """``AutoConfig`` of a local checkpoint folder with ``trust_remote_code=False``.

    A missing or unreadable config.json, or one that needs custom code, raises ValueError.
    """
    from transformers import AutoConfig

    config_file = os.path.join(path, "config.json")
    if not os.path.isfile(config_file):
        raise ValueError(f"model folder {path} has no config.json")
    try:
        config = AutoConfig.from_pretrained(path, revision=revision, trust_remote_code=False)
    except ValueError as e:
        if "trust_remote_code" in str(e) or "remote code" in str(e):
            raise ValueError(f"the config of {path} needs custom (remote) code, which vllm never "
                             f"runs; only built-in transformers architectures load: {e}") from e
        raise ValueError(f"cannot read {config_file}: {e}") from e
    except (KeyError, OSError) as e:
        raise ValueError(f"cannot read {config_file}: {e}") from e
    if getattr(config, "auto_map", None):
        raise ValueError(f"the config of {path} maps to custom (remote) code (auto_map), which "
                         "vllm never runs")
    return config


def config_dtype(config: Any) -> torch.dtype | None:
    """The checkpoint dtype a config records (``dtype`` in transformers 5, else torch_dtype)."""
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if value is None:
        return None
    if isinstance(value, torch.dtype):
        return value
    value = str(value).removeprefix("torch.")
    dtype = getattr(torch, value, None)
    return dtype if isinstance(dtype, torch.dtype) else None


def max_positions(config: Any) -> int | None:
    """The longest context a config declares (max_position_embeddings, n_positions, ...)."""
    for attr in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def vocab_size(config: Any) -> int:
    value = getattr(config, "vocab_size", None)
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"model config has no valid vocab_size (got {value!r})")
    return value
