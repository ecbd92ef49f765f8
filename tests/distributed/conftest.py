"""The tests here start two ranks on this host (TP=2) or check TP configurations; on a GPU
platform two ranks take two devices, so a one-GPU host skips them (CPU CI runs them all)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _two_local_devices() -> None:
    from vllm.platforms import current_platform

    n = current_platform.device_count()
    if n < 2:
        pytest.skip(f"two ranks need two {current_platform.device_type} devices; this host has {n}")
