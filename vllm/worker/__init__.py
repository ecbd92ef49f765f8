"""Workers: one per device; each owns a model runner and its KV cache."""
