"""Bad inputs to the `_C_cpu` ops raise RuntimeError naming the offending argument."""

from __future__ import annotations

import os

import pytest
import torch

from vllm import _custom_ops as ops

from .attention_ref import make_batch
from .conftest import requires_cpu_ext

pytestmark = requires_cpu_ext
C = torch.ops._C_cpu if ops.loaded(ops.CPU) else None


def _raises(arg: str, fn, *args) -> None:
    with pytest.raises(RuntimeError, match=arg):
        fn(*args)


def test_rms_norm_errors() -> None:
    x = torch.randn(4, 32)
    _raises("input must be float32, bfloat16 or float16", C.rms_norm, torch.empty(4, 32),
            x.to(torch.int32), torch.ones(32), 1e-6)
    _raises("out must have dtype", C.rms_norm, torch.empty(4, 32, dtype=torch.half), x,
            torch.ones(32), 1e-6)
    _raises("weight.size", C.rms_norm, torch.empty(4, 32), x, torch.ones(31), 1e-6)
    _raises("weight dtype", C.rms_norm, torch.empty(4, 32), x, torch.ones(32).half(), 1e-6)
    _raises("out shape", C.rms_norm, torch.empty(4, 31), x, torch.ones(32), 1e-6)
    _raises("input must have a contiguous last dimension", C.rms_norm, torch.empty(32, 4),
            x.t(), torch.ones(4), 1e-6)
    _raises("out must be contiguous", C.rms_norm, torch.empty(32, 4).t(), x, torch.ones(32), 1e-6)


def test_fused_add_rms_norm_errors() -> None:
    x = torch.randn(4, 32)
    _raises("residual shape", C.fused_add_rms_norm, x, torch.randn(4, 16), torch.ones(32), 1e-6)
    _raises("residual must have dtype", C.fused_add_rms_norm, x, torch.randn(4, 32).half(),
            torch.ones(32), 1e-6)


def test_activation_errors() -> None:
    _raises("last dimension must be even", C.silu_and_mul, torch.empty(4, 3), torch.randn(4, 7))
    _raises("out must have shape", C.gelu_and_mul, torch.empty(4, 5), torch.randn(4, 8))
    _raises("out must have dtype", C.gelu_tanh_and_mul, torch.empty(4, 4).half(), torch.randn(4, 8))


def test_rotary_errors() -> None:
    pos, q, k, cache = torch.arange(3), torch.randn(3, 64), torch.randn(3, 32), torch.randn(8, 16)
    _raises("positions must have dtype", C.rotary_embedding, pos.int(), q, k, 16, cache, True)
    _raises("cos_sin_cache must have dtype", C.rotary_embedding, pos, q, k, 16, cache.half(), True)
    _raises("rot_dim", C.rotary_embedding, pos, q, k, 8, cache, True)
    _raises("query.size.1.=64 must be a multiple of head_size=24", C.rotary_embedding, pos, q, k,
            24, torch.randn(8, 24), True)
    _raises(r"positions must be in \[0, 8\)", C.rotary_embedding, pos * 5, q, k, 16, cache, True)
    _raises("key.size.0.", C.rotary_embedding, pos, q, k[:2], 16, cache, True)


def test_reshape_and_cache_errors() -> None:
    kv, cache, slots = torch.randn(3, 2, 16), torch.zeros(2, 8, 2, 16), torch.tensor([1, 2, 3])
    _raises("slot_mapping must have dtype", C.reshape_and_cache, kv, kv, cache, cache.clone(),
            slots.int())
    _raises("key_cache must have dtype", C.reshape_and_cache, kv, kv, cache.half(),
            cache.clone(), slots)
    _raises("key_cache.size.3. must be 16", C.reshape_and_cache, kv, kv, torch.zeros(2, 8, 2, 8),
            torch.zeros(2, 8, 2, 8), slots)
    _raises("slot_mapping values must be < num_blocks", C.reshape_and_cache, kv, kv, cache,
            cache.clone(), slots * 10)
    _raises("key_cache must be contiguous", C.reshape_and_cache, kv, kv,
            torch.zeros(2, 8, 16, 2).transpose(2, 3), cache.clone(), slots)


def _attn_args(**override):
    b = make_batch([1, 4], [9, 4], 4, 2, 16, 16, torch.float32)
    args = {"out": torch.empty_like(b["query"]), **b, "max_query_len": 4, "max_seq_len": 9,
            "scale": 0.25}
    args.update(override)
    return list(args.values())


def test_paged_attention_errors() -> None:
    b = make_batch([1, 4], [9, 4], 4, 2, 16, 16, torch.float32)
    _raises("block_tables must have dtype", C.paged_attention,
            *_attn_args(block_tables=b["block_tables"].long()))
    _raises("query heads .4. must be a multiple of key_cache heads .3.", C.paged_attention,
            *_attn_args(key_cache=torch.zeros(4, 16, 3, 16), value_cache=torch.zeros(4, 16, 3, 16)))
    _raises("seq_len 2 < its query length 4", C.paged_attention,
            *_attn_args(seq_lens=torch.tensor([9, 2], dtype=torch.int32)))
    _raises("needs 3 blocks but block_tables has 2 columns", C.paged_attention,
            *_attn_args(seq_lens=torch.tensor([40, 4], dtype=torch.int32)))
    bad_bt = b["block_tables"].clone()
    bad_bt[0, 0] = 99
    _raises(r"block_tables\[0, 0\]=99", C.paged_attention, *_attn_args(block_tables=bad_bt))
    _raises("key_cache must have dtype", C.paged_attention,
            *_attn_args(key_cache=b["key_cache"].half()))


def test_fused_moe_errors() -> None:
    x, w13, w2 = torch.randn(5, 48), torch.randn(3, 32, 48), torch.randn(3, 48, 16)
    w, ids = torch.rand(5, 2), torch.randint(0, 3, (5, 2))
    _raises(r"topk_ids must be in \[0, 3\)", C.fused_moe, torch.empty(5, 48), x, w13, w2, w,
            ids + 3)
    _raises("w2.size.2. must be 16", C.fused_moe, torch.empty(5, 48), x, w13,
            torch.randn(3, 48, 8), w, ids)
    _raises("topk_ids must be int32 or int64", C.fused_moe, torch.empty(5, 48), x, w13, w2, w,
            ids.float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device type (CUDA)")
def test_mismatched_devices() -> None:
    x = torch.randn(4, 32)
    with pytest.raises(RuntimeError, match="CPU tensor"):
        C.rms_norm(torch.empty(4, 32), x, torch.ones(32, device="cuda"), 1e-6)


def test_helpers() -> None:
    from vllm import _C_cpu  # type: ignore[attr-defined]

    isas = _C_cpu.compiled_isas()
    assert "scalar" in isas and _C_cpu.isa() in isas
    with pytest.raises(ValueError, match="not compiled in"):
        _C_cpu.set_isa("avx9000")
    with pytest.raises(ValueError, match="invalid"):
        _C_cpu.bind_omp_threads([-1])
    with pytest.raises(ValueError, match="empty"):
        _C_cpu.bind_omp_threads([])


def test_bind_omp_threads_in_subprocess() -> None:
    """Binding changes the process's affinity, so it runs in a child process."""
    import subprocess
    import sys

    core = sorted(os.sched_getaffinity(0))[-1]
    code = (
        "import os, torch; from vllm import _C_cpu; "
        f"_C_cpu.bind_omp_threads([{core}]); print(sorted(os.sched_getaffinity(0)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"[{core}]"
