"""GGUF (llama.cpp) files: config, tokenizer and dequantized tensors under Hugging Face names.

The file is parsed once per process (``open_gguf`` caches it; see gguf_reader.py); tensors are
dequantized once, as they are yielded. llama.cpp stores the q/k projections of llama models permuted for its
interleaved (GPT-J style) rope; we undo that so the HF (neox-style) rope layout applies.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import torch

from vllm.model_executor.model_loader.gguf_dequant import dequantize
from vllm.model_executor.model_loader.gguf_reader import GGUFFile, read_gguf

SUPPORTED_ARCHS = ("llama", "qwen2")

# GGUF per-layer tensor name -> HF name (after "model.layers.N.")
_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GLOBAL_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_LAYER_RE = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")


@lru_cache(maxsize=4)
def _open_cached(path: str, mtime: float) -> GGUFFile:
    return read_gguf(path)


def open_gguf(path: str) -> GGUFFile:
    """Parse ``path`` once per process (keyed by path and modification time)."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"GGUF file {path} does not exist")
    return _open_cached(path, os.path.getmtime(path))


def _meta(f: GGUFFile, key: str, default: Any = None, required: bool = False) -> Any:
    full = f"{f.arch}.{key}"
    if full in f.metadata:
        return f.metadata[full]
    if required:
        raise ValueError(f"GGUF file {f.path} lacks metadata {full!r}")
    return default


def _rope_parameters(f: GGUFFile) -> dict[str, Any]:
    """Rope settings; linear scaling is mapped, other scaled ropes are refused (not silently
    run unscaled)."""
    params: dict[str, Any] = {"rope_type": "default",
                              "rope_theta": float(_meta(f, "rope.freq_base", 10000.0))}
    scaling = str(_meta(f, "rope.scaling.type", "none"))
    if scaling == "linear":
        params.update(rope_type="linear", factor=float(_meta(f, "rope.scaling.factor", 1.0)))
    elif scaling != "none":
        raise ValueError(f"GGUF rope scaling {scaling!r} in {f.path} is not supported "
                         "(none or linear)")
    if "rope_freqs.weight" in f.tensor_names():
        raise ValueError(f"GGUF file {f.path} has per-frequency rope factors (rope_freqs, e.g. "
                         "llama 3.1 scaling), which are not supported yet")
    return params


def gguf_config(path: str):
    """A transformers config (Llama or Qwen2) from the file's metadata."""
    import transformers

    f = open_gguf(path)
    if f.arch not in SUPPORTED_ARCHS:
        raise ValueError(f"GGUF architecture {f.arch!r} in {path} is not supported; "
                         f"supported: {', '.join(SUPPORTED_ARCHS)}")
    heads = int(_meta(f, "attention.head_count", required=True))
    hidden = int(_meta(f, "embedding_length", required=True))
    tokens = f.metadata.get("tokenizer.ggml.tokens")
    vocab = _meta(f, "vocab_size") or (len(tokens) if tokens else None)
    if vocab is None:
        vocab = next(t.shape[0] for t in f.tensors if t.name == "token_embd.weight")
    kwargs: dict[str, Any] = dict(
        vocab_size=int(vocab),
        hidden_size=hidden,
        intermediate_size=int(_meta(f, "feed_forward_length", required=True)),
        num_hidden_layers=int(_meta(f, "block_count", required=True)),
        num_attention_heads=heads,
        num_key_value_heads=int(_meta(f, "attention.head_count_kv", heads)),
        max_position_embeddings=int(_meta(f, "context_length", 2048)),
        rms_norm_eps=float(_meta(f, "attention.layer_norm_rms_epsilon", 1e-6)),
        rope_parameters=_rope_parameters(f),
        tie_word_embeddings="output.weight" not in f.tensor_names(),
    )
    for key, name in (("bos_token_id", "bos"), ("eos_token_id", "eos"),
                      ("pad_token_id", "padding")):
        value = f.metadata.get(f"tokenizer.ggml.{name}_token_id")
        if value is not None:
            kwargs[key] = int(value)
    if f.arch == "llama":
        head_dim = _meta(f, "attention.key_length") or _meta(f, "rope.dimension_count")
        kwargs["head_dim"] = int(head_dim) if head_dim else hidden // heads
        config = transformers.LlamaConfig(**kwargs)
        config.architectures = ["LlamaForCausalLM"]
    else:
        config = transformers.Qwen2Config(**kwargs)
        config.architectures = ["Qwen2ForCausalLM"]
    return config


def hf_name(gguf_name: str) -> str | None:
    """GGUF tensor name -> HF name (None for tensors we do not use, e.g. rope_freqs)."""
    stem, _, kind = gguf_name.rpartition(".")
    if stem in _GLOBAL_NAMES:
        return f"{_GLOBAL_NAMES[stem]}.{kind}"
    m = _LAYER_RE.match(gguf_name)
    if m and m.group(2) in _LAYER_NAMES:
        return f"model.layers.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}.{m.group(3)}"
    return None


def unpermute_qk(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo llama.cpp's q/k row permutation: per head, rows were interleaved (pairs
    (i, i + half) became adjacent); put them back as two halves. Works for [out, in] and [out]."""
    out = w.shape[0]
    half = out // n_heads // 2
    return w.reshape(n_heads, half, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def _dequantize_one_thread(raw, qtype: int, shape: tuple[int, ...],
                           dtype: torch.dtype) -> torch.Tensor:
    """Dequantize on one intra-op thread: these element-wise passes are memory bound, and on a
    busy CPU waiting for a second OpenMP thread cost 10x more than it saved (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return dequantize(raw, qtype, shape, dtype)
    finally:
        torch.set_num_threads(threads)


def iter_gguf_weights(path: str, dtype: torch.dtype) -> Iterator[tuple[str, torch.Tensor]]:
    """(HF name, tensor in ``dtype``) for every tensor the model needs, dequantized once."""
    f = open_gguf(path)
    heads = int(_meta(f, "attention.head_count", required=True))
    kv_heads = int(_meta(f, "attention.head_count_kv", heads))
    for t in f.tensors:
        name = hf_name(t.name)
        if name is None:
            continue
        w = _dequantize_one_thread(t.raw, t.qtype, t.shape, dtype)
        if f.arch == "llama":
            if ".q_proj." in name:
                w = unpermute_qk(w, heads)
            elif ".k_proj." in name:
                w = unpermute_qk(w, kv_heads)
        yield name, w
