"""Helpers shared by model tests (and the engine's generation tests): HF references and a
standalone forward of our models."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from functools import lru_cache

import torch

from vllm.model_executor.models.registry import get_model_class


@lru_cache(maxsize=8)
def hf_model(model_dir: str, dtype: torch.dtype = torch.float32, gguf_file: str | None = None):
    """transformers' model for ``model_dir`` in eval mode (cached: tests reuse it)."""
    from transformers import AutoModelForCausalLM

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, **kwargs)
    return model.eval()


def to_ids(model_dir: str, prompt: str | list[int], gguf_file: str | None = None) -> list[int]:
    """Token ids of a prompt given as text (tokenized by the folder's tokenizer) or as ids."""
    if not isinstance(prompt, str):
        return list(prompt)
    from transformers import AutoTokenizer

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    return AutoTokenizer.from_pretrained(model_dir, **kwargs)(prompt)["input_ids"]


def hf_greedy(
    model_dir: str, prompts: list[str] | list[list[int]], n: int, dtype: torch.dtype = torch.float32,
    gguf_file: str | None = None,
) -> list[list[int]]:
    """HF ``generate(do_sample=False)`` of ``n`` new token ids for each prompt (text or ids), one
    at a time, never stopping early at EOS."""
    model = hf_model(model_dir, dtype, gguf_file)
    outs = []
    with torch.no_grad():
        for prompt in prompts:
            ids = to_ids(model_dir, prompt, gguf_file)
            x = torch.tensor([ids])
            y = model.generate(
                x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=n,
                min_new_tokens=n, eos_token_id=None, pad_token_id=0,
            )
            outs.append(y[0, len(ids):].tolist())
    return outs


def hf_logits(model_dir: str, ids: list[int], dtype: torch.dtype = torch.float32,
              gguf_file: str | None = None) -> torch.Tensor:
    """HF's float32 logits [len(ids), vocab] for one prompt."""
    model = hf_model(model_dir, dtype, gguf_file)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def hf_top_logprobs(model_dir: str, prompt: str | list[int], k: int,
                    dtype: torch.dtype = torch.float32,
                    gguf_file: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(top-k logprobs [T, k], their token ids [T, k]) of HF at every position of ``prompt``
    (text or ids; pass prompt + generated ids to score a continuation)."""
    ids = to_ids(model_dir, prompt, gguf_file)
    logprobs = torch.log_softmax(hf_logits(model_dir, ids, dtype, gguf_file), dim=-1)
    return logprobs.topk(k, dim=-1)


def iter_safetensors(model_dir: str) -> Iterator[tuple[str, torch.Tensor]]:
    from safetensors import safe_open

    files = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {model_dir}")
    for path in files:
        with safe_open(path, framework="pt") as f:
            for name in f.keys():
                yield name, f.get_tensor(name)


DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def load_our_model(model_dir: str, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """Our model for an HF folder (or .gguf file) on the current platform's device (its CustomOps
    dispatch by platform): through H3's loader when it is importable, else built and loaded here
    from the safetensors files."""
    from vllm.platforms import current_platform

    device = current_platform.device()
    try:
        from vllm.model_executor.model_loader import load_model, resolve_model
    except ImportError:
        load_model = None
    if load_model is not None:
        from vllm.config import ModelConfig

        resolved = resolve_model(ModelConfig(model=model_dir, dtype=DTYPE_NAMES[dtype]))
        return load_model(resolved, device).eval()
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    cls = get_model_class(config.architectures[0])
    model = cls(config, dtype=dtype)
    model.load_weights(iter_safetensors(model_dir))
    return model.to(device).eval()


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def our_logits(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    """Standalone (no KV cache) forward of one sequence on the model's device -> float32 logits
    [T, vocab] on the CPU (where the HF references are)."""
    dev = _device_of(model)
    with torch.no_grad():
        x = torch.tensor(ids, dtype=torch.long, device=dev)
        hidden = model(x, torch.arange(len(ids), device=dev))  # [T, H]
        return model.compute_logits(hidden).cpu()


def our_greedy(model: torch.nn.Module, ids: list[int], n: int) -> list[int]:
    """Greedy continuation by re-running the full forward each step (standalone attention)."""
    seq = list(ids)
    dev = _device_of(model)
    with torch.no_grad():
        for _ in range(n):
            x = torch.tensor(seq, dtype=torch.long, device=dev)
            hidden = model(x, torch.arange(len(seq), device=dev))  # [T, H]
            seq.append(int(model.compute_logits(hidden[-1:])[0].argmax()))  # last position only
    return seq[len(ids):]
