"""Typed wrappers over the compiled kernels, plus their fake (meta) implementations.

The three extensions register the same schemas in their own namespace: ``_C`` (CUDA, and the
hipified ROCm build), ``_rocm_C`` (ROCm-only kernels) and ``_C_cpu``. Layers pick the namespace
through their ``forward_<platform>`` method and pass it as ``ns``. Schemas (shared contract):

  rms_norm(Tensor! out, Tensor input, Tensor weight, float epsilon) -> ()
  fused_add_rms_norm(Tensor! input, Tensor! residual, Tensor weight, float epsilon) -> ()
  silu_and_mul(Tensor! out, Tensor input) -> ()
  gelu_and_mul(Tensor! out, Tensor input) -> ()
  gelu_tanh_and_mul(Tensor! out, Tensor input) -> ()
  rotary_embedding(Tensor positions, Tensor! query, Tensor!? key, int head_size,
                   Tensor cos_sin_cache, bool is_neox) -> ()
  reshape_and_cache(Tensor key, Tensor value, Tensor! key_cache, Tensor! value_cache,
                    Tensor slot_mapping) -> ()
  paged_attention(Tensor! out, Tensor query, Tensor key_cache, Tensor value_cache,
                  Tensor block_tables, Tensor seq_lens, Tensor query_start_loc,
                  int max_query_len, int max_seq_len, float scale) -> ()
  fused_moe(Tensor! out, Tensor hidden, Tensor w13, Tensor w2, Tensor topk_weights,
            Tensor topk_ids) -> ()
  gemv(Tensor! out, Tensor x, Tensor weight, Tensor? bias, int rows_per_warp) -> ()   [_C only]
"""

from __future__ import annotations

import importlib

import torch

CPU = "_C_cpu"
CUDA = "_C"  # also the namespace of the hipified ROCm build
ROCM = "_rocm_C"
NAMESPACES = (CPU, CUDA, ROCM)

# Ops that mutate their arguments and return nothing: their fake impl does nothing.
MUTATING_OPS = (
    "rms_norm",
    "fused_add_rms_norm",
    "silu_and_mul",
    "gelu_and_mul",
    "gelu_tanh_and_mul",
    "rotary_embedding",
    "reshape_and_cache",
    "paged_attention",
    "fused_moe",
    "gemv",
)


def _lib(ns: str) -> object:
    return getattr(torch.ops, ns)


def has_op(ns: str, name: str) -> bool:
    """Whether extension ``ns`` is loaded and registers ``name``."""
    return hasattr(_lib(ns), name) if loaded(ns) else False


_loaded: dict[str, bool] = {}


def built_extensions() -> tuple[str, ...] | None:
    """Extensions the last build of this install produced (None: a source tree never built)."""
    try:
        from vllm._build_info import EXTENSIONS
    except ImportError:
        return None
    return tuple(EXTENSIONS)


def loaded(ns: str) -> bool:
    """Import ``vllm.<ns>`` once (registering its ops and fakes); False if it is not built.

    A leftover .so from an earlier build for another target (say ``_C_cpu`` after rebuilding
    with ``VLLM_TARGET_DEVICE=empty``) is ignored: the build info decides what this install has.
    """
    if ns not in _loaded:
        built = built_extensions()
        if built is not None and ns not in built:
            _loaded[ns] = False
            return False
        try:
            importlib.import_module(f"vllm.{ns}")
            _loaded[ns] = True
            _register_fakes(ns)
        except ImportError:
            _loaded[ns] = False
    return _loaded[ns]


def _register_fakes(ns: str) -> None:
    lib = _lib(ns)
    for name in MUTATING_OPS:
        if hasattr(lib, name):
            qualname = f"{ns}::{name}"
            try:
                torch.library.register_fake(qualname)(_noop_fake)
            except RuntimeError:
                pass  # already registered (e.g. in C++ with a Meta kernel)


def _noop_fake(*args: object, **kwargs: object) -> None:
    return None


# ---- norms -------------------------------------------------------------------------------
def rms_norm(out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, eps: float, ns: str) -> None:
    """out[..., h] = x / rms(x) * weight.  x: [..., hidden] (rows may be strided)."""
    _lib(ns).rms_norm(out, x, weight, eps)


def fused_add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float, ns: str
) -> None:
    """In place: residual <- x + residual; x <- rms_norm(residual) * weight."""
    _lib(ns).fused_add_rms_norm(x, residual, weight, eps)


# ---- activations -------------------------------------------------------------------------
def silu_and_mul(out: torch.Tensor, x: torch.Tensor, ns: str) -> None:
    """out[..., d] = silu(x[..., :d]) * x[..., d:]."""
    _lib(ns).silu_and_mul(out, x)


def gelu_and_mul(out: torch.Tensor, x: torch.Tensor, approximate: str, ns: str) -> None:
    """out[..., d] = gelu(x[..., :d]) * x[..., d:], gelu exact ('none') or 'tanh'."""
    if approximate == "tanh":
        _lib(ns).gelu_tanh_and_mul(out, x)
    else:
        _lib(ns).gelu_and_mul(out, x)


# ---- rotary ------------------------------------------------------------------------------
def rotary_embedding(
    positions: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor | None,
    head_size: int,
    cos_sin_cache: torch.Tensor,
    is_neox: bool,
    ns: str,
) -> None:
    """In place.  query: [T, Hq*D], key: [T, Hk*D], cos_sin_cache: [max_pos, rot_dim] (cos|sin)."""
    _lib(ns).rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox)


# ---- KV cache and attention --------------------------------------------------------------
def reshape_and_cache(
    key: torch.Tensor,
    value: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    slot_mapping: torch.Tensor,
    ns: str,
) -> None:
    """key/value: [T, Hk, D]; caches: [num_blocks, block_size, Hk, D]; slot < 0 is skipped."""
    _lib(ns).reshape_and_cache(key, value, key_cache, value_cache, slot_mapping)


def paged_attention(
    out: torch.Tensor,
    query: torch.Tensor,
    key_cache: torch.Tensor,
    value_cache: torch.Tensor,
    block_tables: torch.Tensor,
    seq_lens: torch.Tensor,
    query_start_loc: torch.Tensor,
    max_query_len: int,
    max_seq_len: int,
    scale: float,
    ns: str,
) -> None:
    """Causal varlen attention over paged KV (prefill chunks and decodes in one call).

    query/out: [T, Hq, D]; block_tables: int32 [S, max_blocks]; seq_lens: int32 [S] (context
    incl. the new tokens); query_start_loc: int32 [S+1]. Query token j of sequence i sits at
    position seq_lens[i] - q_len_i + j and attends to KV positions <= its own. max_query_len
    and max_seq_len plan the launch (split-K) only: results are correct for any context length,
    so a CUDA graph captured with one hint replays for every batch.
    """
    _lib(ns).paged_attention(
        out, query, key_cache, value_cache, block_tables, seq_lens, query_start_loc,
        max_query_len, max_seq_len, scale,
    )


# ---- MoE ---------------------------------------------------------------------------------
def fused_moe(
    out: torch.Tensor,
    hidden: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    ns: str,
) -> None:
    """out[T, H] = sum_k topk_weights[t, k] * expert_{topk_ids[t, k]}(hidden[t]).

    w13: [E, 2I, H] (gate rows then up rows), w2: [E, H, I]; expert(x) = w2 @ (silu(g) * u).
    """
    _lib(ns).fused_moe(out, hidden, w13, w2, topk_weights, topk_ids)


# ---- decode-sized GEMMs ------------------------------------------------------------------
def gemv(out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
         ns: str, rows_per_warp: int = 0) -> None:
    """out[M, N] = x[M, K] @ weight[N, K].T (+ bias[N]) for 1 <= M <= 4 rows, fp16/bf16.

    One pass over the weights with no split-K reduction (see csrc/cuda/gemv.cuh). K must be a
    multiple of 8 and x / weight 16-byte aligned with row strides divisible by 8.
    ``rows_per_warp`` (1, 2, 4; 0 = the kernel's choice) is a tuning knob for benchmarks."""
    _lib(ns).gemv(out, x, weight, bias, rows_per_warp)
