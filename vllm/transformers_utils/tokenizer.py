"""The tokenizer of a resolved model: a Hugging Face fast tokenizer (remote code never runs)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from vllm.model_executor.model_loader import ResolvedModel


def load_chat_template(chat_template: str) -> str:
    """A template file's text, or the literal template itself."""
    path = os.path.expanduser(chat_template)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return f.read()
    if "{" not in chat_template:  # not Jinja: a path that does not exist
        raise ValueError(f"chat_template {chat_template!r} is neither an existing file nor a "
                         "Jinja template")
    return chat_template


def _from_gguf(path: str) -> PreTrainedTokenizerBase:
    from vllm.model_executor.model_loader.gguf_loader import open_gguf
    from vllm.model_executor.model_loader.gguf_tokenizer import gguf_tokenizer

    return gguf_tokenizer(open_gguf(path).metadata)


def _from_pretrained(path: str, revision: str | None) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"cannot load a tokenizer from {path!r}: {e}") from e
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"the tokenizer of {path!r} is not a fast (tokenizers) tokenizer")
    return tok


def get_tokenizer(resolved: ResolvedModel, chat_template: str | None = None,
                  revision: str | None = None) -> PreTrainedTokenizerBase:
    """The model's tokenizer; ``chat_template`` (file or literal) overrides the model's.

    A tokenizer that can emit ids the model's embedding does not have raises ValueError.
    """
    path = resolved.tokenizer_path
    if path.endswith(".gguf") and os.path.isfile(path):
        tok = _from_gguf(path)
    else:
        tok = _from_pretrained(path, revision)
    if len(tok) > resolved.vocab_size:
        raise ValueError(
            f"tokenizer {path!r} has {len(tok)} tokens but the model's embedding has only "
            f"vocab_size={resolved.vocab_size} rows: the tokenizer does not match the model"
        )
    if chat_template is not None:
        tok.chat_template = load_chat_template(chat_template)
    return tok
