"""Each built-in platform declares its method order, extensions and distributed backend."""

from __future__ import annotations

import pytest
import torch

from vllm.platforms.cpu import CpuPlatform
from vllm.platforms.cuda import CudaPlatform
from vllm.platforms.interface import Platform
from vllm.platforms.rocm import RocmPlatform
from vllm.platforms.xpu import XpuPlatform

# name, class, device type, CustomOp method order, extensions, distributed backend
DECLARED = [
    ("cpu", CpuPlatform, "cpu", ("cpu", "native"), ("_C_cpu",), "gloo"),
    ("cuda", CudaPlatform, "cuda", ("cuda", "native"), ("_C",), "nccl"),
    ("rocm", RocmPlatform, "cuda", ("hip", "cuda", "native"), ("_C", "_rocm_C"), "nccl"),
    ("xpu", XpuPlatform, "xpu", ("xpu", "native"), (), "xccl"),
]


@pytest.mark.parametrize("name,cls,device_type,order,exts,dist", DECLARED, ids=[d[0] for d in DECLARED])
def test_declaration(
    name: str, cls: type[Platform], device_type: str, order: tuple, exts: tuple, dist: str
) -> None:
    p = cls()
    assert p.name == name
    assert p.device_type == device_type
    assert p.op_method_order == order
    assert p.op_method_order[-1] == "native"  # the reference implementation is always the fallback
    assert p.extensions == exts
    assert p.dist_backend == dist
    assert p.supported_dtypes and all(isinstance(d, torch.dtype) for d in p.supported_dtypes)
    assert p.default_attention_backend


@pytest.mark.parametrize("cls", [CpuPlatform, CudaPlatform, RocmPlatform, XpuPlatform])
def test_native_is_always_available(cls: type[Platform]) -> None:
    ok, why = cls().method_available("native")
    assert ok and why


def test_methods_without_kernels_are_unavailable_with_reason() -> None:
    ok, why = CpuPlatform().method_available("cuda")
    assert not ok and why == "no kernels for forward_cuda on cpu"


def test_missing_extension_reason_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    p = CudaPlatform()  # vllm._C is not built for a CPU-only test machine
    if p.has_extension("_C"):
        pytest.skip("vllm._C is built here")
    ok, why = p.method_available("cuda")
    assert not ok and "vllm._C not loaded" in why


def test_rocm_kernels_come_from_the_hipified_c() -> None:
    p = RocmPlatform()
    assert p.kernel_namespace("hip") == "_C" and p.kernel_namespace("cuda") == "_C"
    assert p.supports_graphs() and CudaPlatform().supports_graphs() and not CpuPlatform().supports_graphs()


def test_xpu_method_depends_on_ipex(monkeypatch: pytest.MonkeyPatch) -> None:
    import vllm.platforms.xpu as xpu

    monkeypatch.setattr(xpu, "ipex_available", lambda: False)
    ok, why = XpuPlatform().method_available("xpu")
    assert not ok and "intel_extension_for_pytorch" in why
    monkeypatch.setattr(xpu, "ipex_available", lambda: True)
    assert XpuPlatform().method_available("xpu")[0]


def test_cpu_memory_and_name() -> None:
    p = CpuPlatform()
    free, total = p.memory_info()
    assert 0 < free <= total
    assert p.device_name().startswith("cpu (")
    assert p.device() == torch.device("cpu")


def test_cpu_kv_cache_space(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "0.5")
    assert CpuPlatform().kv_cache_bytes() == 1 << 29
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "0")
    with pytest.raises(ValueError, match="VLLM_CPU_KVCACHE_SPACE"):
        CpuPlatform().kv_cache_bytes()


@pytest.mark.parametrize(
    "isa,cfg,expected",
    [
        ("avx512_bf16", torch.bfloat16, torch.bfloat16),
        ("avx2", torch.bfloat16, torch.float32),
        ("avx512_bf16", torch.float16, torch.float32),
    ],
)
def test_cpu_default_dtype(
    monkeypatch: pytest.MonkeyPatch, isa: str, cfg: torch.dtype, expected: torch.dtype
) -> None:
    import vllm.platforms.cpu as cpu

    monkeypatch.setattr(cpu, "cpu_isa", lambda: isa)
    assert CpuPlatform().default_dtype(cfg) == expected


def test_cpu_isa_from_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    import vllm.platforms.cpu as cpu

    cases = {
        frozenset({"avx2", "fma"}): "avx2",
        frozenset({"avx2", "fma", "avx512f", "avx512bw", "avx512vl"}): "avx512",
        frozenset({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"}): "avx512_bf16",
        frozenset({"sse4_2"}): "scalar",
    }
    for flags, isa in cases.items():
        monkeypatch.setattr(cpu, "cpu_flags", lambda flags=flags: set(flags))
        assert cpu.cpu_isa() == isa


@pytest.mark.parametrize("total_gib,budget", [(80, 16384), (141, 16384), (24, 8192), (48, 8192)])
def test_cuda_offline_token_budget_follows_memory(monkeypatch: pytest.MonkeyPatch, total_gib: int,
                                                  budget: int) -> None:
    """Offline steps take 16,384 tokens on large-memory GPUs; serving stays at 8,192 on all."""
    monkeypatch.setattr(CudaPlatform, "total_memory", lambda self: total_gib * 2**30)
    p = CudaPlatform()
    assert p.default_max_num_batched_tokens == budget
    assert p.serving_max_num_batched_tokens == 8192
