"""Model loading: resolve a model argument, build the model class, stream weights into it.

    resolved = resolve_model(vllm_config.model)          # config, dtype, context length
    model = load_model(resolved, torch.device("cpu"))    # built + weights loaded + eval()
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch

from vllm.logger import init_logger
from vllm.model_executor.model_loader.resolve import (
    ResolvedModel,
    default_model_path,
    resolve_model,
)
from vllm.model_executor.model_loader.weights import check_and_copy, iter_folder_weights

logger = init_logger(__name__)

__all__ = [
    "ResolvedModel",
    "check_and_copy",
    "default_model_path",
    "iter_weights",
    "load_model",
    "resolve_model",
]


def iter_weights(resolved: ResolvedModel) -> Iterator[tuple[str, torch.Tensor]]:
    """(HF name, tensor) pairs, lazily: memory-mapped safetensors, or dequantized GGUF tensors
    (already in the run dtype)."""
    if resolved.gguf_file is not None:
        from vllm.model_executor.model_loader.gguf_loader import iter_gguf_weights

        return iter_gguf_weights(resolved.gguf_file, resolved.dtype)
    return iter_folder_weights(resolved.path)


def build_model(resolved: ResolvedModel, device: torch.device) -> torch.nn.Module:
    """Instantiate the registered class for the architecture (weights uninitialized)."""
    from vllm.model_executor.models.registry import get_model_class

    cls = get_model_class(resolved.architecture)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(resolved.dtype)
    try:
        with torch.device(device):
            return cls(resolved.hf_config, dtype=resolved.dtype)
    finally:
        torch.set_default_dtype(previous)


def load_model(resolved: ResolvedModel, device: torch.device) -> torch.nn.Module:
    """Build the model on ``device`` and load every weight; a tensor the checkpoint lacks raises
    ValueError naming it."""
    start = time.perf_counter()
    model = build_model(resolved, torch.device(device))
    loaded = model.load_weights(iter_weights(resolved))
    if loaded is not None:  # backstop: the model's own load_weights should already raise
        params = dict(model.named_parameters(remove_duplicate=False))
        loaded_ids = {id(params[name]) for name in loaded if name in params}
        missing = sorted(name for name, p in model.named_parameters() if id(p) not in loaded_ids)
        if missing:
            shown = ", ".join(missing[:8]) + (f" (+{len(missing) - 8} more)"
                                              if len(missing) > 8 else "")
            raise ValueError(f"checkpoint {resolved.path} is missing weights for: {shown}")
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    logger.info("loaded %s (%s, %.1f MiB of %s weights) on %s in %.2f s", resolved.architecture,
                resolved.path, nbytes / 2**20, str(resolved.dtype).removeprefix("torch."),
                device, time.perf_counter() - start)
    return model.eval()
