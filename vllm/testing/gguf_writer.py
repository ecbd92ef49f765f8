"""Convert a tiny HF llama/qwen2 checkpoint folder into a GGUF file, the way llama.cpp does.

For tests of the GGUF loader: the llama q/k rows are permuted like llama.cpp's converter does,
matrices may be quantized (Q8_0/Q4_0/Q4_1 via ``gguf.quants``), norms stay F32, and the byte-level
BPE tokenizer is written as ``tokenizer.ggml.*`` metadata.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

_LAYER = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
          "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
          "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
          "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
_GLOBAL = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}


def gguf_name(hf: str) -> str:
    stem, _, kind = hf.rpartition(".")
    if stem in _GLOBAL:
        return f"{_GLOBAL[stem]}.{kind}"
    parts = stem.split(".")  # model.layers.N.<rest>
    return f"blk.{parts[2]}.{_LAYER['.'.join(parts[3:])]}.{kind}"


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's row permutation of q/k (halves of each head interleaved)."""
    half = w.shape[0] // n_heads // 2
    return w.reshape(n_heads, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _write_tokenizer(writer, folder: str, pre: str) -> None:
    with open(os.path.join(folder, "tokenizer.json")) as f:
        data = json.load(f)
    vocab = dict(data["model"]["vocab"])
    special = {t["content"]: t["id"] for t in data["added_tokens"] if t.get("special")}
    vocab.update(special)
    tokens = [tok for tok, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_merges(merges)
    writer.add_token_types([3 if t in special else 1 for t in tokens])
    with open(os.path.join(folder, "tokenizer_config.json")) as f:
        cfg = json.load(f)
    for key, add in (("bos_token", writer.add_bos_token_id), ("eos_token", writer.add_eos_token_id),
                     ("pad_token", writer.add_pad_token_id)):
        if cfg.get(key):
            add(vocab[cfg[key]])
    template = os.path.join(folder, "chat_template.jinja")
    if os.path.isfile(template):
        with open(template) as f:
            writer.add_chat_template(f.read())


def write_gguf(folder: str, out_path: str, qtype: str = "F32") -> str:
    """Write ``folder`` (a llama or qwen2 HF checkpoint) as a GGUF file; 2-D weights in ``qtype``
    (F32, F16, BF16, Q8_0, Q4_0 or Q4_1), 1-D tensors in F32. Returns ``out_path``."""
    import gguf
    from safetensors.torch import load_file

    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    arch = {"llama": "llama", "qwen2": "qwen2"}[cfg["model_type"]]
    writer = gguf.GGUFWriter(out_path, arch)
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_context_length(cfg["max_position_embeddings"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(cfg["num_attention_heads"])
    writer.add_head_count_kv(cfg["num_key_value_heads"])
    writer.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    writer.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    writer.add_vocab_size(cfg["vocab_size"])
    # transformers' Qwen2 tokenizer splits text with its own regex; llama.cpp names it "qwen2"
    _write_tokenizer(writer, folder, "qwen2" if arch == "qwen2" else "default")
    kind = gguf.GGMLQuantizationType[qtype]
    state = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            state.update(load_file(os.path.join(folder, name)))
    for name, tensor in state.items():
        w = tensor.to(torch.float32).numpy()
        if arch == "llama" and ".q_proj." in name:
            w = permute_qk(w, cfg["num_attention_heads"])
        elif arch == "llama" and ".k_proj." in name:
            w = permute_qk(w, cfg["num_key_value_heads"])
        if w.ndim == 1 or kind == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(gguf_name(name), np.ascontiguousarray(w))
        else:
            q = gguf.quants.quantize(np.ascontiguousarray(w), kind)
            writer.add_tensor(gguf_name(name), q, raw_shape=q.shape, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path
