"""Attention backends: `native` (reference, any device), `cpu`, `cuda`, `rocm`, `xpu`."""
