"""A ``PreTrainedTokenizerFast`` built straight from a GGUF file's byte-level BPE vocabulary.

Built with the ``tokenizers`` library from ``tokenizer.ggml.tokens``/``merges``/``token_type``
(much faster than transformers' GGUF conversion, with the same ids: a test checks that).
Control tokens (type 3) become special tokens; user-defined ones (type 4) plain added tokens.
"""

from __future__ import annotations

from functools import cache
from typing import Any

# Split regexes of the pre-tokenizers llama.cpp names in ``tokenizer.ggml.pre``. Files whose
# ``pre`` is not listed use the GPT-2 split of the ByteLevel pre-tokenizer.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PRE_SPLITS = {"llama3": _LLAMA3_SPLIT, "llama-v3": _LLAMA3_SPLIT, "llama-bpe": _LLAMA3_SPLIT,
              "smaug-bpe": _LLAMA3_SPLIT, "qwen2": _QWEN2_SPLIT}
_CONTROL, _USER_DEFINED = 3, 4


@cache
def _byte_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable unicode character map."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _spell(token: str, alphabet: set[str], mapping: dict[int, str]) -> str:
    """Tokens already in the byte alphabet stay; others are re-spelled byte by byte."""
    if set(token) <= alphabet:
        return token
    return "".join(mapping[b] for b in token.encode("utf-8"))


def _backend(meta: dict[str, Any]):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    mapping = _byte_alphabet()
    alphabet = set(mapping.values())
    tokens = [str(t) for t in meta["tokenizer.ggml.tokens"]]
    vocab = {_spell(t, alphabet, mapping): i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges") or []]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    split = PRE_SPLITS.get(str(meta.get("tokenizer.ggml.pre", "")))
    if split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    types = list(meta.get("tokenizer.ggml.token_type") or [])
    control = [t for t, k in zip(tokens, types, strict=False) if k == _CONTROL and set(t) <= alphabet]
    user = [t for t, k in zip(tokens, types, strict=False) if k == _USER_DEFINED and t in vocab]
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in control])
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in user])
    return tok, tokens, control


def gguf_tokenizer(meta: dict[str, Any]):
    """A fast HF tokenizer from GGUF metadata (byte-level BPE: ``tokenizer.ggml.model == gpt2``)."""
    from transformers import PreTrainedTokenizerFast

    model = meta.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(f"GGUF tokenizer model {model!r} is not supported (only byte-level BPE, "
                         "'gpt2'); pass a tokenizer folder with --tokenizer")
    if not meta.get("tokenizer.ggml.tokens"):
        raise ValueError("GGUF file has no tokenizer vocabulary (tokenizer.ggml.tokens)")
    backend, tokens, _ = _backend(meta)

    def token(key: str) -> str | None:
        idx = meta.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[int(idx)] if idx is not None and 0 <= int(idx) < len(tokens) else None

    fast = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=token("bos"), eos_token=token("eos"), unk_token=token("unknown"),
        pad_token=token("padding"),
        clean_up_tokenization_spaces=False,
    )
    if meta.get("tokenizer.ggml.add_bos_token"):
        fast.add_bos_token = True
    template = meta.get("tokenizer.chat_template")
    if template:
        fast.chat_template = str(template)
    return fast
