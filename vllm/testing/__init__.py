"""Test helpers: locally built random-weight checkpoints and a locally trained tokenizer."""

from vllm.testing.checkpoints import ARCHS, SIZES, make_checkpoint
from vllm.testing.tokenizer import train_tokenizer

__all__ = ["ARCHS", "SIZES", "make_checkpoint", "train_tokenizer"]
