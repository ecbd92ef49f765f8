"""Fixtures for platform tests: every test starts and ends with detection un-cached."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import vllm.platforms as platforms


@pytest.fixture(autouse=True)
def fresh_platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No cached platform, no VLLM_PLATFORM from the caller's shell, no installed plugins."""
    monkeypatch.delenv("VLLM_PLATFORM", raising=False)
    monkeypatch.setattr(platforms, "entry_points", lambda group: [])
    platforms.reset_platform()
    yield
    platforms.reset_platform()
