"""Incremental detokenization: text grows token by token without ever emitting half a UTF-8
character (a trailing U+FFFD is held back until the bytes complete) and with correct spacing
(a few prompt tokens serve as decoding context).

Two costs matter at hundreds of running requests: every token needs two decodes, and the
transformers ``decode`` wrapper costs several times the Rust decode underneath. So decoding goes
straight to the fast tokenizer's backend where that gives the same text, and a ``lazy``
detokenizer (for requests whose text nobody reads before they finish: final-only outputs
without stop strings) only collects tokens and decodes once, in ``flush``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_CONTEXT_TOKENS = 5

DecodeFn = Callable[[list[int]], str]


def make_decode_fn(tokenizer: Any, skip_special_tokens: bool) -> DecodeFn:
    """The cheapest call that decodes exactly like ``tokenizer.decode(ids, skip_special_tokens)``.

    transformers' fast tokenizers decode with their Rust backend and then, only when
    ``clean_up_tokenization_spaces`` is set (and the model is not BPE), post-process the text;
    without that post-processing the backend call alone is equivalent."""
    backend = getattr(tokenizer, "_tokenizer", None)
    cleanup = getattr(tokenizer, "clean_up_tokenization_spaces", True)
    if backend is not None and hasattr(backend, "decode") and cleanup is False:
        raw = backend.decode
        return lambda ids: raw(ids, skip_special_tokens=skip_special_tokens)
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)


class IncrementalDetokenizer:
    def __init__(self, tokenizer: Any, prompt_token_ids: list[int], skip_special_tokens: bool = True,
                 lazy: bool = False, decode_fn: DecodeFn | None = None) -> None:
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.lazy = lazy
        self._decode = decode_fn or make_decode_fn(tokenizer, skip_special_tokens)
        self.tokens: list[int] = list(prompt_token_ids[-_CONTEXT_TOKENS:])
        self.prefix_offset = 0
        self.read_offset = len(self.tokens)
        self._prefix_text: str | None = None  # decode of tokens[prefix_offset:read_offset]

    def step(self, new_token_ids: list[int]) -> str:
        """Text newly completed by these tokens (possibly empty while a character is partial;
        always empty when lazy: the text comes from ``flush``)."""
        if self.lazy:
            self.tokens.extend(new_token_ids)
            return ""
        out: list[str] = []
        for tok in new_token_ids:
            self.tokens.append(tok)
            # The offsets only move when text is emitted: while tokens decode to nothing
            # (special tokens, partial characters) the prefix's text is reused, one decode
            # per token instead of two.
            prefix_text = self._prefix_text
            if prefix_text is None:
                prefix_text = self._decode(self.tokens[self.prefix_offset : self.read_offset])
            full_text = self._decode(self.tokens[self.prefix_offset :])
            if len(full_text) > len(prefix_text) and not full_text.endswith("\ufffd"):
                out.append(full_text[len(prefix_text) :])
                self.prefix_offset = self.read_offset
                self.read_offset = len(self.tokens)
                self._prefix_text = None
            else:
                self._prefix_text = prefix_text
        return "".join(out)

    def flush(self) -> str:
        """At the end of the request: whatever is still held back (an incomplete character
        decodes to U+FFFD)."""
        prefix_text = self._decode(self.tokens[self.prefix_offset : self.read_offset])
        full_text = self._decode(self.tokens[self.prefix_offset :])
        self.prefix_offset = self.read_offset = len(self.tokens)
        self._prefix_text = None
        return full_text[len(prefix_text) :] if len(full_text) > len(prefix_text) else ""
