"""vllm.envs: typed reads, clear errors listing the allowed values, and setup.py's target check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vllm import envs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "name,allowed",
    [
        ("VLLM_TARGET_DEVICE", "auto, cuda, rocm, cpu, xpu, empty"),
        ("VLLM_PLATFORM", "cpu, cuda, rocm, xpu"),
    ],
)
def test_unknown_choice_lists_allowed(monkeypatch: pytest.MonkeyPatch, name: str, allowed: str) -> None:
    monkeypatch.setenv(name, "bogus")
    with pytest.raises(ValueError) as err:
        getattr(envs, name)
    assert f"{name}='bogus'" in str(err.value)
    assert f"allowed values: {allowed}" in str(err.value)


def test_choices_are_normalized(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_PLATFORM", " CPU ")
    assert envs.VLLM_PLATFORM == "cpu"
    monkeypatch.setenv("VLLM_PLATFORM", "")
    assert envs.VLLM_PLATFORM is None
    monkeypatch.delenv("VLLM_TARGET_DEVICE", raising=False)
    assert envs.VLLM_TARGET_DEVICE == "auto"


def test_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_CPU_NUM_THREADS", "3")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1.5")
    monkeypatch.setenv("VLLM_ALLOW_PICKLE_WEIGHTS", "yes")
    assert envs.VLLM_CPU_NUM_THREADS == 3
    assert envs.VLLM_CPU_KVCACHE_SPACE == 1.5
    assert envs.VLLM_ALLOW_PICKLE_WEIGHTS is True
    monkeypatch.setenv("VLLM_ALLOW_PICKLE_WEIGHTS", "0")
    assert envs.VLLM_ALLOW_PICKLE_WEIGHTS is False


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("VLLM_CPU_NUM_THREADS", "many", "must be an integer"),
        ("VLLM_CPU_KVCACHE_SPACE", "lots", "must be a number"),
        ("VLLM_ALLOW_PICKLE_WEIGHTS", "maybe", "must be one of 1/0/true/false"),
    ],
)
def test_bad_typed_values(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as err:
        getattr(envs, name)
    assert name in str(err.value) and message in str(err.value)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VLLM_CUDA_ARCHS", "VLLM_CPU_OMP_THREADS_BIND", "VLLM_ENGINE_READY_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    assert envs.VLLM_CUDA_ARCHS == "90"
    assert envs.VLLM_CPU_OMP_THREADS_BIND == "auto"
    assert envs.VLLM_ENGINE_READY_TIMEOUT_S == 600


def test_reads_are_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")
    assert envs.VLLM_LOGGING_LEVEL == "DEBUG"
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "WARNING")
    assert envs.VLLM_LOGGING_LEVEL == "WARNING"


def test_describe_documents_every_variable() -> None:
    docs = envs.describe()
    assert sorted(docs) == dir(envs)
    assert all(name.startswith("VLLM_") and doc.strip() for name, doc in docs.items())
    assert "VLLM_TARGET_DEVICE" in docs and "VLLM_PLATFORM" in docs


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="VLLM_NOT_A_VAR"):
        envs.VLLM_NOT_A_VAR  # noqa: B018


def test_setup_py_rejects_unknown_target() -> None:
    """Checked before anything is built or written (vllm/_build_info.py stays untouched)."""
    env = {**os.environ, "VLLM_TARGET_DEVICE": "bogus"}
    proc = subprocess.run(
        [sys.executable, "setup.py", "--version"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "VLLM_TARGET_DEVICE='bogus' is not valid" in proc.stderr
    assert "auto, cuda, rocm, cpu, xpu, empty" in proc.stderr


def test_readme_table_matches_describe() -> None:
    """README.md's VLLM_* table is generated from envs.describe(); keep the two in step."""
    readme = (ROOT / "README.md").read_text()
    rows = {}
    for line in readme.splitlines():
        if line.startswith("| `VLLM_"):
            name, doc = (cell.strip() for cell in line.strip("|").split("|", 1))
            rows[name.strip("`")] = doc.strip()
    assert rows == envs.describe()
