"""Thin, safe wrappers over transformers: configs and tokenizers (remote code never runs)."""
