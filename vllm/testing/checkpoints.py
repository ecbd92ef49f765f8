"""Seeded random-weight Hugging Face checkpoints for tests and benchmarks (no downloads).

``make_checkpoint("llama", out_dir)`` writes config.json, *.safetensors (sharded on request),
generation_config.json and a locally trained tokenizer. The model is the real transformers class
built from a config, so the folder loads with ``AutoModelForCausalLM.from_pretrained``.

CLI: ``python -m vllm.testing.checkpoints ARCH OUT_DIR [--size tiny|smollm2-135m|...]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
from typing import Any

import torch

from vllm.testing.tokenizer import ENDOFTEXT, IM_END, special_token_ids, train_tokenizer

TOKENIZER_VOCAB = 640  # size the test tokenizer is trained to

# arch -> (transformers config class name, tiny-size config kwargs)
_TINY_LAYERS = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, intermediate_size=128, max_position_embeddings=1024,
                    rms_norm_eps=1e-6)
ARCHS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", dict(_TINY_LAYERS, rope_parameters={"rope_type": "default",
                                                                 "rope_theta": 10000.0})),
    "qwen2": ("Qwen2Config", dict(_TINY_LAYERS, rope_parameters={"rope_type": "default",
                                                                 "rope_theta": 1e6})),
    "qwen3": ("Qwen3Config", dict(_TINY_LAYERS, head_dim=16,
                                  rope_parameters={"rope_type": "default", "rope_theta": 1e6})),
    "mixtral": ("MixtralConfig", dict(_TINY_LAYERS, num_local_experts=4, num_experts_per_tok=2,
                                      rope_parameters={"rope_type": "default",
                                                       "rope_theta": 1e6})),
    "qwen3_moe": ("Qwen3MoeConfig", dict(_TINY_LAYERS, head_dim=16, num_experts=4,
                                         num_experts_per_tok=2, moe_intermediate_size=64,
                                         norm_topk_prob=True, decoder_sparse_step=1,
                                         rope_parameters={"rope_type": "default",
                                                          "rope_theta": 1e6})),
    "gpt2": ("GPT2Config", dict(n_embd=64, n_layer=2, n_head=4, n_inner=128, n_positions=1024,
                                activation_function="gelu_new", layer_norm_epsilon=1e-5)),
}

# Named realistic shapes for benchmarks: size -> (arch, config kwargs, tied)
SIZES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "smollm2-135m": ("llama", dict(
        hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
        intermediate_size=1536, vocab_size=49152, max_position_embeddings=8192,
        rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
    ), True),
    "qwen2.5-0.5b": ("qwen2", dict(
        hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
        intermediate_size=4864, vocab_size=151936, max_position_embeddings=32768,
        rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
    ), True),
    "llama-3.1-8b": ("llama", dict(
        hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
        intermediate_size=14336, vocab_size=128256, max_position_embeddings=131072,
        rms_norm_eps=1e-5, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
    ), False),
}

_DTYPES = {"float32": torch.float32, "float": torch.float32, "bfloat16": torch.bfloat16,
           "float16": torch.float16, "half": torch.float16}


def build_config(arch: str, size: str = "tiny", tie_word_embeddings: bool | None = None,
                 vocab_size: int | None = None, **overrides: Any):
    """The transformers config of ``arch`` at ``size`` (``tiny`` or a name in ``SIZES``)."""
    import transformers

    if arch not in ARCHS:
        raise ValueError(f"arch={arch!r} is not supported; choose one of {sorted(ARCHS)}")
    cls_name, kwargs = ARCHS[arch]
    kwargs = dict(kwargs)
    tied_default = True
    if size != "tiny":
        if size not in SIZES:
            raise ValueError(f"size={size!r} is not known; choose 'tiny' or one of {sorted(SIZES)}")
        size_arch, size_kwargs, tied_default = SIZES[size]
        if size_arch != arch:
            raise ValueError(f"size={size!r} is a {size_arch!r} shape, not {arch!r}")
        kwargs = dict(size_kwargs)
    ids = special_token_ids(TOKENIZER_VOCAB)
    kwargs.setdefault("vocab_size", TOKENIZER_VOCAB)
    if vocab_size is not None:
        kwargs["vocab_size"] = vocab_size
    tied = tied_default if tie_word_embeddings is None else tie_word_embeddings
    if arch == "gpt2":
        tied = True  # GPT2LMHeadModel always ties its head to the embedding
    kwargs.update(bos_token_id=ids[ENDOFTEXT], eos_token_id=ids[IM_END],
                  pad_token_id=ids[ENDOFTEXT], tie_word_embeddings=tied)
    kwargs.update(overrides)
    config = getattr(transformers, cls_name)(**kwargs)
    config.architectures = [_model_class_name(arch)]
    return config


def _model_class_name(arch: str) -> str:
    return {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
            "qwen3": "Qwen3ForCausalLM", "mixtral": "MixtralForCausalLM",
            "qwen3_moe": "Qwen3MoeForCausalLM", "gpt2": "GPT2LMHeadModel"}[arch]


_EMBEDDING_NAMES = ("embed_tokens", "lm_head", "wte", "wpe")


def init_std(hidden_size: int) -> tuple[float, float]:
    """(embedding std, matrix std) for a hidden size.

    Embeddings ~1/sqrt(hidden) clamped to [0.02, 0.1] keep logits spread (std ~0.8); the other
    matrices get ~1.6/sqrt(hidden) so the layers, not the token's own (tied) embedding, decide
    the next token: greedy decoding then varies instead of repeating one token.
    """
    emb = min(0.1, max(0.02, 1.0 / math.sqrt(hidden_size)))
    return emb, 1.6 / math.sqrt(hidden_size)


@torch.no_grad()
def init_weights(model: torch.nn.Module, hidden_size: int, seed: int) -> None:
    """Seeded init: matrices ~N(0, std); norm weights ~1 + N(0, 0.1); biases ~N(0, 0.02)."""
    emb_std, mat_std = init_std(hidden_size)
    gen = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        noise = torch.randn(param.shape, generator=gen, dtype=torch.float32)
        leaf = name.rsplit(".", 1)[-1]
        if param.dim() >= 2:
            std = emb_std if any(k in name for k in _EMBEDDING_NAMES) else mat_std
            value = noise * std
        elif leaf == "weight":  # a norm's scale
            value = 1.0 + 0.1 * noise
        else:
            value = 0.02 * noise
        param.copy_(value.to(param.dtype))


def make_checkpoint(arch: str, out_dir: str | os.PathLike, size: str = "tiny",
                    dtype: torch.dtype | str | None = None, seed: int = 0,
                    tie_word_embeddings: bool | None = None, shards: int = 1,
                    vocab_size: int | None = None, **overrides: Any) -> str:
    """Write a seeded random-weight HF checkpoint (+ tokenizer) to ``out_dir``; return it.

    ``overrides`` are config fields (e.g. ``num_hidden_layers=1``). ``shards > 1`` splits the
    weights over about that many safetensors files with a ``model.safetensors.index.json``.
    ``dtype`` defaults to float32 for ``tiny`` and bfloat16 (as released) for named sizes.
    """
    import transformers

    if dtype is None:
        dtype = torch.float32 if size == "tiny" else torch.bfloat16
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype={dtype!r} is not supported; choose one of {sorted(_DTYPES)}")
        dtype = _DTYPES[dtype]
    if shards < 1:
        raise ValueError(f"shards={shards} must be >= 1")
    out_dir = str(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    config = build_config(arch, size, tie_word_embeddings, vocab_size, **overrides)
    # Build on the meta device (no slow default init, no double memory), then materialize.
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    model = model.to_empty(device="cpu")
    init_weights(model, _hidden(config), seed)
    if config.tie_word_embeddings:
        model.tie_weights()
    total = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    max_shard = total + 1 if shards == 1 else max(1, math.ceil(total / shards))
    # Write into a staging folder and move config.json last: a folder with config.json is whole.
    staging = tempfile.mkdtemp(prefix=".staging-", dir=out_dir)
    try:
        model.save_pretrained(staging, max_shard_size=max_shard)
        train_tokenizer(staging, TOKENIZER_VOCAB)
        _write_generation_config(staging)
        names = sorted(os.listdir(staging), key=lambda n: n == "config.json")
        for name in names:
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _hidden(config) -> int:
    return getattr(config, "hidden_size", None) or config.n_embd


def _write_generation_config(out_dir: str) -> None:
    ids = special_token_ids(TOKENIZER_VOCAB)
    gen = {"bos_token_id": ids[ENDOFTEXT], "eos_token_id": [ids[IM_END], ids[ENDOFTEXT]],
           "pad_token_id": ids[ENDOFTEXT], "do_sample": False,
           "transformers_version": _transformers_version()}
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a seeded random-weight HF checkpoint.")
    parser.add_argument("arch", choices=sorted(ARCHS))
    parser.add_argument("out_dir")
    parser.add_argument("--size", default="tiny", help=f"tiny or one of {sorted(SIZES)}")
    parser.add_argument("--dtype", default=None, choices=sorted(_DTYPES),
                        help="default: float32 for tiny, bfloat16 for named sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--untied", action="store_true", help="separate lm_head weights")
    args = parser.parse_args(argv)
    path = make_checkpoint(args.arch, args.out_dir, size=args.size, dtype=args.dtype,
                           seed=args.seed, shards=args.shards,
                           tie_word_embeddings=False if args.untied else None)
    print(path)


if __name__ == "__main__":
    main()
