"""Platform detection: probes, build target, VLLM_PLATFORM override and plugins (all faked)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import vllm.platforms as platforms
from vllm.platforms.interface import Platform


def _probe(ok: bool, why: str) -> Callable[[], tuple[bool, str]]:
    return lambda: (ok, why)


def fake_host(monkeypatch: pytest.MonkeyPatch, *present: str, target: str = "auto") -> None:
    """Make exactly the GPU platforms in `present` visible, with this build target."""
    for name in ("cuda", "rocm", "xpu"):
        ok = name in present
        why = f"fake {name} {'present' if ok else 'absent'}"
        monkeypatch.setitem(platforms.PROBES, name, _probe(ok, why))
    monkeypatch.setattr(platforms, "build_target", lambda: target)


@dataclass
class FakeEntryPoint:
    name: str
    result: Any

    def load(self) -> Callable[[], Any]:
        return lambda: self.result


class PluginPlatform(Platform):
    name = "plugin_hw"
    device_type = "cpu"


def fake_plugins(monkeypatch: pytest.MonkeyPatch, *eps: FakeEntryPoint) -> None:
    def entry_points(group: str) -> list[FakeEntryPoint]:
        assert group == platforms.PLUGIN_GROUP
        return list(eps)

    monkeypatch.setattr(platforms, "entry_points", entry_points)


@pytest.mark.parametrize("gpu", ["cuda", "rocm", "xpu"])
def test_single_gpu_probe_is_chosen(monkeypatch: pytest.MonkeyPatch, gpu: str) -> None:
    fake_host(monkeypatch, gpu)
    p = platforms.resolve_platform()
    assert p.name == gpu
    assert f"fake {gpu} present" in p.selection_reason


def test_cpu_when_no_probe_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_host(monkeypatch)
    p = platforms.resolve_platform()
    assert p.name == "cpu"
    assert "no GPU platform probe matched" in p.selection_reason


def test_two_matches_is_an_error_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_host(monkeypatch, "cuda", "xpu")
    with pytest.raises(RuntimeError) as err:
        platforms.resolve_platform()
    msg = str(err.value)
    assert "cuda" in msg and "xpu" in msg and "VLLM_PLATFORM" in msg


def test_cpu_build_on_cuda_host_picks_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_host(monkeypatch, "cuda", target="cpu")
    p = platforms.resolve_platform()
    assert p.name == "cpu"
    assert "cuda" in p.selection_reason and "built for cpu" in p.selection_reason


@pytest.mark.parametrize("target", ["cuda", "empty", "auto"])
def test_compatible_builds_use_the_gpu(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    fake_host(monkeypatch, "cuda", target=target)
    assert platforms.resolve_platform().name == "cuda"


def test_rocm_build_ignores_a_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_host(monkeypatch, "cuda", "rocm", target="rocm")
    assert platforms.resolve_platform().name == "rocm"


@pytest.mark.parametrize("forced", ["cpu", "cuda", "rocm", "xpu"])
def test_vllm_platform_override_beats_probes(monkeypatch: pytest.MonkeyPatch, forced: str) -> None:
    fake_host(monkeypatch, "cuda", "xpu")  # would be an error without the override
    monkeypatch.setenv("VLLM_PLATFORM", forced)
    p = platforms.resolve_platform()
    assert p.name == forced
    assert p.selection_reason == f"VLLM_PLATFORM={forced}"


def test_invalid_vllm_platform_lists_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_host(monkeypatch)
    monkeypatch.setenv("VLLM_PLATFORM", "tpu")
    with pytest.raises(ValueError) as err:
        platforms.resolve_platform()
    assert "VLLM_PLATFORM='tpu'" in str(err.value)
    assert "cpu, cuda, rocm, xpu" in str(err.value)


def test_plugin_wins_over_override_and_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_host(monkeypatch, "cuda")
    monkeypatch.setenv("VLLM_PLATFORM", "cpu")
    fake_plugins(monkeypatch, FakeEntryPoint("my_hw", PluginPlatform))
    p = platforms.resolve_platform()
    assert isinstance(p, PluginPlatform)
    assert "my_hw" in p.selection_reason and platforms.PLUGIN_GROUP in p.selection_reason


@pytest.mark.parametrize(
    "spec",
    [PluginPlatform, PluginPlatform(), f"{__name__}:PluginPlatform"],
    ids=["class", "instance", "path"],
)
def test_plugin_spec_forms(monkeypatch: pytest.MonkeyPatch, spec: Any) -> None:
    fake_host(monkeypatch)
    fake_plugins(monkeypatch, FakeEntryPoint("my_hw", spec))
    assert platforms.resolve_platform().name == "plugin_hw"


def test_plugin_reporting_no_hardware_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_host(monkeypatch, "xpu")
    fake_plugins(monkeypatch, FakeEntryPoint("absent_hw", None))
    assert platforms.resolve_platform().name == "xpu"


def test_two_plugins_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_host(monkeypatch)
    fake_plugins(monkeypatch, FakeEntryPoint("hw_a", PluginPlatform), FakeEntryPoint("hw_b", PluginPlatform))
    with pytest.raises(RuntimeError) as err:
        platforms.resolve_platform()
    assert "hw_a" in str(err.value) and "hw_b" in str(err.value)


def test_bad_plugin_return_value_is_a_type_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_host(monkeypatch)
    fake_plugins(monkeypatch, FakeEntryPoint("broken", 42))
    with pytest.raises(TypeError, match="'broken'.*42"):
        platforms.resolve_platform()


def test_current_platform_is_cached_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_host(monkeypatch, "rocm")
    first = platforms.current_platform
    assert first.name == "rocm"
    fake_host(monkeypatch, "xpu")
    assert platforms.current_platform is first
    platforms.reset_platform()
    assert platforms.current_platform.name == "xpu"


def test_current_platform_is_never_a_bound_attribute() -> None:
    """`current_platform` is served by the module's __getattr__ from the cache. A bound module
    attribute (left behind by a test that monkeypatched it) would shadow the cache for the rest
    of the run, and every override (VLLM_PLATFORM, a fake platform) would silently stop working
    (it did, on the GPU host, where the real platform differs from the one tests expect)."""
    assert "current_platform" not in vars(platforms)


def test_unknown_module_attribute() -> None:
    with pytest.raises(AttributeError):
        platforms.no_such_thing  # noqa: B018
