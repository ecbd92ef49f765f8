"""Triton varlen causal attention over the paged KV cache, for steps with prefill chunks.

The `_C` kernel gives every query token its own thread block, which is right for decodes (one
token per sequence, bound by reading the cache) and wasteful for prefill chunks, where a tile of
query tokens can share each K/V page and use tensor cores. This kernel tiles query rows flash-
attention style. A program owns one (sequence, query tile, kv head); its ``BLOCK_M`` rows are
``TILE_Q`` query tokens x the ``G`` query heads of that kv head (GQA), so each K/V page is loaded
once for all of them. Online softmax in fp32.

Same arguments and layout as ``vllm._custom_ops.paged_attention`` (key/value caches
``[num_blocks, block_size, Hk, D]``). Registered as the torch op ``vllm::triton_paged_attention``
with a fake implementation, so it traces under torch.compile like the compiled kernels.
"""

from __future__ import annotations

import functools

import torch

try:
    import triton
    import triton.language as tl

    HAS_TRITON = True
except ImportError:  # CPU installs: the CUDA/ROCm backends check `available()` first
    HAS_TRITON = False


def available() -> bool:
    return HAS_TRITON


if HAS_TRITON:

    # The block-table row stride changes with every batch's widest sequence: specialising on
    # its value (== 1, % 16 == 0) would compile new variants in the middle of serving.
    @triton.jit(do_not_specialize=["stride_bt"])
    def _paged_prefill_kernel(
        out_ptr, q_ptr, k_ptr, v_ptr, bt_ptr, seq_lens_ptr, qsl_ptr,
        stride_ot, stride_oh, stride_qt, stride_qh,
        stride_kb, stride_ks, stride_kh, stride_vb, stride_vs, stride_vh, stride_bt,
        scale, block_size,
        G: tl.constexpr, TILE_Q: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
        D: tl.constexpr, D_PAD: tl.constexpr, IEEE: tl.constexpr,
    ):
        s = tl.program_id(0)
        tile = tl.program_id(1)
        kvh = tl.program_id(2)
        q0 = tl.load(qsl_ptr + s)
        q_len = tl.load(qsl_ptr + s + 1) - q0
        if tile * TILE_Q >= q_len:
            return
        seq_len = tl.load(seq_lens_ptr + s)
        first_pos = seq_len - q_len  # position of the sequence's first query token

        rows = tl.arange(0, BLOCK_M)  # [M]
        tok = tile * TILE_Q + rows // G  # query token within the sequence
        head = kvh * G + rows % G
        row_ok = (rows < TILE_Q * G) & (tok < q_len)
        pos = first_pos + tok  # [M] each row's position: it sees keys <= pos
        d = tl.arange(0, D_PAD)
        d_ok = d < D
        q = tl.load(q_ptr + (q0 + tok)[:, None] * stride_qt + head[:, None] * stride_qh + d[None, :],
                    mask=row_ok[:, None] & d_ok[None, :], other=0.0)  # [M, D]

        m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
        l_i = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, D_PAD], tl.float32)
        # Keys past the tile's last query position are masked for every row: stop there.
        last_tok = tl.minimum(tile * TILE_Q + TILE_Q, q_len) - 1
        kv_end = first_pos + last_tok + 1
        qk_scale = scale * 1.4426950408889634  # exp(x) = exp2(x * log2 e)
        for start in range(0, kv_end, BLOCK_N):
            n = start + tl.arange(0, BLOCK_N)  # [N] key positions
            n_ok = n < kv_end
            page = tl.load(bt_ptr + s * stride_bt + n // block_size, mask=n_ok, other=0)
            in_blk = n % block_size
            k_off = page.to(tl.int64) * stride_kb + in_blk * stride_ks + kvh * stride_kh
            v_off = page.to(tl.int64) * stride_vb + in_blk * stride_vs + kvh * stride_vh
            kv_mask = n_ok[:, None] & d_ok[None, :]
            k = tl.load(k_ptr + k_off[:, None] + d[None, :], mask=kv_mask, other=0.0)  # [N, D]
            if IEEE:
                qk = tl.dot(q, tl.trans(k), input_precision="ieee")
            else:
                qk = tl.dot(q, tl.trans(k))  # [M, N] fp32
            visible = (n[None, :] <= pos[:, None]) & n_ok[None, :]
            qk = tl.where(visible, qk * qk_scale, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(qk, 1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with nothing visible yet
            p = tl.exp2(qk - m_safe[:, None])
            alpha = tl.exp2(m_i - m_safe)
            l_i = l_i * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None]
            v = tl.load(v_ptr + v_off[:, None] + d[None, :], mask=kv_mask, other=0.0)  # [N, D]
            if IEEE:
                acc += tl.dot(p.to(v.dtype), v, input_precision="ieee")
            else:
                acc += tl.dot(p.to(v.dtype), v)
            m_i = m_new
        o = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]
        tl.store(out_ptr + (q0 + tok)[:, None] * stride_ot + head[:, None] * stride_oh + d[None, :],
                 o.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])


def _launch_shape(group: int, head_size: int, max_query_len: int) -> tuple[int, int, int]:
    """(BLOCK_M, TILE_Q, BLOCK_N): rows are TILE_Q tokens x group heads, at least 16 rows for
    tensor-core dots; decode-only launches (one token per sequence) need just the group's rows.
    Smaller tiles for big heads keep the fp32 accumulator in registers."""
    if max_query_len == 1:
        block_m = 16
    else:
        block_m = 64 if head_size <= 128 else 32
    block_m = max(block_m, 16 * -(-group // 16))
    block_m = 1 << (block_m - 1).bit_length()
    return block_m, max(1, block_m // group), 64 if head_size <= 128 else 32


def triton_paged_attention(
    out: torch.Tensor, query: torch.Tensor, key_cache: torch.Tensor, value_cache: torch.Tensor,
    block_tables: torch.Tensor, seq_lens: torch.Tensor, query_start_loc: torch.Tensor,
    max_query_len: int, max_seq_len: int, scale: float,
) -> None:
    """out[T, Hq, D] = causal paged attention of query [T, Hq, D] (see the module docstring)."""
    torch.ops.vllm.triton_paged_attention(out, query, key_cache, value_cache, block_tables,
                                          seq_lens, query_start_loc, max_query_len, max_seq_len,
                                          scale)


def _check(out: torch.Tensor, query: torch.Tensor, key_cache: torch.Tensor,
           value_cache: torch.Tensor) -> None:
    if query.dim() != 3 or out.shape != query.shape:
        raise ValueError(f"query {tuple(query.shape)} must be [T, Hq, D] and match out "
                         f"{tuple(out.shape)}")
    if key_cache.dim() != 4 or key_cache.shape != value_cache.shape:
        raise ValueError(f"key/value caches {tuple(key_cache.shape)} / {tuple(value_cache.shape)} "
                         "must both be [num_blocks, block_size, Hk, D]")
    hq, hk = query.shape[1], key_cache.shape[2]
    if hq % hk or key_cache.shape[3] != query.shape[2]:
        raise ValueError(f"query heads {hq} x {query.shape[2]} do not fit kv heads "
                         f"{hk} x {key_cache.shape[3]}")
    for name, t in (("query", query), ("out", out), ("key_cache", key_cache),
                    ("value_cache", value_cache)):
        if t.stride(-1) != 1:
            raise ValueError(f"{name}: the head dimension must be contiguous")


@functools.cache
def _register() -> None:
    lib = torch.library.Library("vllm", "FRAGMENT")  # noqa: TOR901
    lib.define(
        "triton_paged_attention(Tensor(a!) out, Tensor query, Tensor key_cache, "
        "Tensor value_cache, Tensor block_tables, Tensor seq_lens, Tensor query_start_loc, "
        "int max_query_len, int max_seq_len, float scale) -> ()"
    )

    def impl(out: torch.Tensor, query: torch.Tensor, key_cache: torch.Tensor,
             value_cache: torch.Tensor, block_tables: torch.Tensor, seq_lens: torch.Tensor,
             query_start_loc: torch.Tensor, max_query_len: int, max_seq_len: int,
             scale: float) -> None:
        _check(out, query, key_cache, value_cache)
        num_seqs = seq_lens.shape[0]
        if query.shape[0] == 0 or num_seqs == 0 or max_query_len <= 0:
            return
        hk, d = key_cache.shape[2], key_cache.shape[3]
        group = query.shape[1] // hk
        block_m, tile_q, block_n = _launch_shape(group, d, max_query_len)
        grid = (num_seqs, triton.cdiv(max_query_len, tile_q), hk)
        _paged_prefill_kernel[grid](
            out, query, key_cache, value_cache, block_tables, seq_lens, query_start_loc,
            out.stride(0), out.stride(1), query.stride(0), query.stride(1),
            key_cache.stride(0), key_cache.stride(1), key_cache.stride(2),
            value_cache.stride(0), value_cache.stride(1), value_cache.stride(2),
            block_tables.stride(0), float(scale), key_cache.shape[1],
            G=group, TILE_Q=tile_q, BLOCK_M=block_m, BLOCK_N=block_n, D=d,
            D_PAD=triton.next_power_of_2(d), IEEE=query.dtype == torch.float32,
            num_warps=4, num_stages=2,
        )

    def fake(*args: object) -> None:
        return None

    for key in ("CUDA", "CPU"):  # CPU: Triton's interpreter (TRITON_INTERPRET=1) in tests
        lib.impl("triton_paged_attention", impl, key)
    torch.library.register_fake("vllm::triton_paged_attention", fake, lib=lib)
    _register.lib = lib  # type: ignore[attr-defined]  # keep the library alive


if HAS_TRITON:
    _register()
