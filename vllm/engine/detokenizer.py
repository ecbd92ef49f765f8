"""Incremental detokenization: text grows token by token without ever emitting half a UTF-8
character (a trailing U+FFFD is held back until the bytes complete) and with correct spacing
(a few prompt tokens serve as decoding context)."""

from __future__ import annotations

from typing import Any

_CONTEXT_TOKENS = 5


class IncrementalDetokenizer:
    def __init__(self, tokenizer: Any, prompt_token_ids: list[int], skip_special_tokens: bool = True):
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.tokens: list[int] = list(prompt_token_ids[-_CONTEXT_TOKENS:])
        self.prefix_offset = 0
        self.read_offset = len(self.tokens)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)

    def step(self, new_token_ids: list[int]) -> str:
        """Text newly completed by these tokens (possibly empty while a character is partial)."""
        out: list[str] = []
        for tok in new_token_ids:
            self.tokens.append(tok)
            prefix_text = self._decode(self.tokens[self.prefix_offset : self.read_offset])
            full_text = self._decode(self.tokens[self.prefix_offset :])
            if len(full_text) > len(prefix_text) and not full_text.endswith("\ufffd"):
                out.append(full_text[len(prefix_text) :])
                self.prefix_offset = self.read_offset
                self.read_offset = len(self.tokens)
        return "".join(out)

    def flush(self) -> str:
        """At the end of the request: whatever is still held back (an incomplete character
        decodes to U+FFFD)."""
        prefix_text = self._decode(self.tokens[self.prefix_offset : self.read_offset])
        full_text = self._decode(self.tokens[self.prefix_offset :])
        self.prefix_offset = self.read_offset = len(self.tokens)
        return full_text[len(prefix_text) :] if len(full_text) > len(prefix_text) else ""
