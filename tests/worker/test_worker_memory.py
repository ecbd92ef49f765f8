"""Worker start-up on a device-memory platform: weights that cannot fit fail early and clearly."""

from __future__ import annotations

import pytest


def test_model_too_big_names_sizes(tiny_llama_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A device-memory platform with too little memory: a clean error before loading."""
    from vllm.config import ModelConfig, VllmConfig
    from vllm.platforms import current_platform
    from vllm.worker.worker import Worker

    monkeypatch.setattr(type(current_platform), "kv_cache_in_host_memory", False)
    monkeypatch.setattr(current_platform, "memory_info", lambda: (50_000, 100_000))
    worker = Worker(VllmConfig(model=ModelConfig(model=tiny_llama_dir)))
    worker.init_device()
    with pytest.raises(ValueError, match=r"does not fit: .* GiB per device .*gpu_memory_utilization=0.9"):
        worker.load_model()
    assert worker.runner is None
