"""Checkpoint tensors as (HF name, tensor) pairs, read lazily, plus the checked copy helper.

safetensors files are memory-mapped and read one tensor at a time; nothing is cast here (the
copy into the parameter casts). Pickle checkpoints are read only when resolve_model allowed them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import torch

SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_INDEX = "pytorch_model.bin.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth")


def check_and_copy(param_name: str, param: torch.Tensor, loaded: torch.Tensor) -> None:
    """Copy ``loaded`` into ``param`` (casting dtype/device); shape mismatch -> ValueError
    naming the tensor and both shapes."""
    if tuple(param.shape) != tuple(loaded.shape):
        raise ValueError(
            f"weight {param_name!r}: checkpoint shape {tuple(loaded.shape)} does not match "
            f"model shape {tuple(param.shape)}"
        )
    with torch.no_grad():
        param.data.copy_(loaded)


def _from_index(folder: str, index_name: str) -> list[str] | None:
    index = os.path.join(folder, index_name)
    if not os.path.isfile(index):
        return None
    try:
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"corrupt checkpoint index {index}: {e}") from e
    files = sorted(set(weight_map.values()))
    missing = [name for name in files if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise ValueError(f"checkpoint index {index} names missing files: {', '.join(missing)}")
    return [os.path.join(folder, name) for name in files]


def safetensors_files(folder: str) -> list[str]:
    """The safetensors files of a checkpoint folder (index first, else every *.safetensors)."""
    files = _from_index(folder, SAFETENSORS_INDEX)
    if files is not None:
        return files
    names = sorted(n for n in os.listdir(folder) if n.endswith(".safetensors"))
    # Mistral-style repos add consolidated.safetensors (other tensor names) beside the HF files.
    hf_names = [n for n in names if not n.startswith("consolidated")]
    return [os.path.join(folder, n) for n in (hf_names or names)]


def pickle_files(folder: str) -> list[str]:
    """The pickle weight files (.bin/.pt/.pth) of a checkpoint folder."""
    files = _from_index(folder, PICKLE_INDEX)
    if files is not None:
        return files
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.endswith(PICKLE_SUFFIXES) and not n.startswith("training_args"))


def iter_safetensors(files: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for each tensor of each file, memory-mapped, one at a time."""
    from safetensors import SafetensorError, safe_open

    for path in files:
        try:
            with safe_open(path, framework="pt") as f:
                names = list(f.keys())
                for name in names:
                    yield name, f.get_tensor(name)
        except SafetensorError as e:
            raise ValueError(f"corrupt safetensors file {path}: {e}") from e
        except OSError as e:
            raise ValueError(f"cannot read safetensors file {path}: {e}") from e


def _torch_load(path: str) -> object:
    """``torch.load(weights_only=True)``, memory-mapped when the file format allows it."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):  # legacy (pre zip) files cannot be memory-mapped
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        raise ValueError(f"cannot load pickle checkpoint {path}: {e}") from e


def iter_pickle(files: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) from pickle checkpoints, loaded with ``weights_only=True`` (no code runs)."""
    for path in files:
        state = _torch_load(path)
        if not isinstance(state, dict):
            raise ValueError(f"pickle checkpoint {path} holds a {type(state).__name__}, "
                             "not a state dict")
        for name, tensor in state.items():
            if isinstance(tensor, torch.Tensor):
                yield name, tensor
        del state


def iter_folder_weights(folder: str) -> Iterator[tuple[str, torch.Tensor]]:
    """Tensors of an HF folder: safetensors when present, else pickle files."""
    files = safetensors_files(folder)
    if files:
        yield from iter_safetensors(files)
        return
    files = pickle_files(folder)
    if not files:
        raise ValueError(f"no weights (*.safetensors, *.bin, *.pt) in {folder}")
    yield from iter_pickle(files)
