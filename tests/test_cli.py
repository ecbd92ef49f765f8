"""`vllm` CLI: the command group and `vllm collect-env` (in-process and as a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import vllm.platforms as platforms
from vllm import _custom_ops
from vllm.entrypoints.cli import main


def expected_rms_norm_method() -> str:
    return "forward_cpu" if _custom_ops.loaded("_C_cpu") else "forward_native"


def rms_norm_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.strip().startswith("rms_norm ")]
    assert len(lines) == 1, out
    return lines[0]


@pytest.fixture
def force_cpu(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Pin the CPU platform (so the test also holds on a GPU host) and re-detect around the test."""
    monkeypatch.setenv("VLLM_PLATFORM", "cpu")
    platforms.reset_platform()
    yield
    platforms.reset_platform()


def test_help_lists_subcommands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in ("serve", "bench", "collect-env"):
        assert name in result.output


def test_collect_env_in_process(force_cpu: None) -> None:
    result = CliRunner().invoke(main, ["collect-env"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Platform: cpu (VLLM_PLATFORM=cpu)")
    assert "CustomOp dispatch:" in result.output
    assert f"-> {expected_rms_norm_method()}" in rms_norm_line(result.output)
    assert "VLLM_API_KEY" not in result.output  # secrets are never printed


def test_collect_env_json(force_cpu: None) -> None:
    result = CliRunner().invoke(main, ["collect-env", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["platform"] == "cpu"
    assert info["dispatch"]["rms_norm"]["method"] == expected_rms_norm_method()
    assert info["dispatch"]["rms_norm"]["reason"]
    assert "_C_cpu" in info["extensions"]
    assert info["versions"]["torch"]


def test_collect_env_subprocess_detects_platform() -> None:
    """No override: whatever this host is, the report names the platform detection picks."""
    env = {k: v for k, v in os.environ.items() if k != "VLLM_PLATFORM"}
    proc = subprocess.run(
        [sys.executable, "-m", "vllm.entrypoints.cli", "collect-env"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    platforms.reset_platform()
    try:
        expected = platforms.resolve_platform().name
    finally:
        platforms.reset_platform()
    assert proc.stdout.startswith(f"Platform: {expected} (")
    if expected == "cpu":
        assert f"-> {expected_rms_norm_method()}" in rms_norm_line(proc.stdout)


def test_collect_env_subprocess_bad_platform_fails_cleanly() -> None:
    env = {**os.environ, "VLLM_PLATFORM": "tpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "vllm.entrypoints.cli", "collect-env"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "Error: VLLM_PLATFORM='tpu' is not valid; allowed values: cpu, cuda, rocm, xpu" in proc.stderr
    assert "Traceback" not in proc.stderr
