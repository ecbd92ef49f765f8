// Pieces shared by the two paged-attention paths (attention_decode.h for items with few rows,
// attention_prefill.h for long query tiles): work items, per-thread scratch, fp32 row loads
// and the final normalised store.
#pragma once

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include "cpu/common/vec_scalar.h"
#include "cpu/kernels/api.h"

namespace vllm_cpu {
namespace {

// One work item: tile_len query tokens of one sequence against the kv heads
// [kv_head, kv_head + n_heads). Its rows are ordered (head, token, query head of the group):
// row r = (hh * tile_len + j) * G + g reads query head (kv_head + hh) * G + g of token j.
struct AttnItem {
  int64_t seq, kv_head, n_heads, tile_start, tile_len;
};

// Token (within the tile) and query head of row r.
inline void row_coords(const AttnArgs& a, const AttnItem& it, int64_t r, int64_t* tok,
                       int64_t* head) {
  const int64_t G = a.hq / a.hk, rh = it.tile_len * G, hh = r / rh, rl = r % rh;
  *tok = rl / G;
  *head = (it.kv_head + hh) * G + rl % G;
}

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// A per-thread, 64-byte aligned fp32 buffer that only grows: the OpenMP worker threads live as
// long as the process, so a kernel call costs no allocation once the shapes have been seen.
struct ThreadBuffer {
  float* p = nullptr;
  int64_t cap = 0;
  ~ThreadBuffer() { std::free(p); }
  float* get(int64_t n) {
    if (n > cap) {
      std::free(p);
      cap = round_up(n, 16);
      p = static_cast<float*>(std::aligned_alloc(64, cap * sizeof(float)));
    }
    return p;
  }
};

inline float* thread_scratch(int64_t n) {
  thread_local ThreadBuffer buf;
  return buf.get(n);
}

// Copy n elements of T as fp32 into dst (padded with zeros to dp), times scale.
template <class V, class T>
void load_row_f32(float* dst, const T* src, int64_t n, int64_t dp, float scale) {
  const typename V::R vs = V::set1(scale);
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) V::store(dst + i, V::mul(V::load(src + i), vs));
  for (; i < n; ++i) dst[i] = to_f32(src[i]) * scale;
  for (; i < dp; ++i) dst[i] = 0.0f;
}

// Prefetch n rows of row_bytes each (row stride stride_bytes) into L2 (prefetcht1: a whole
// block of fp32 K is 12 KiB, too much to park in L1 next to the block in use): the next K/V
// block sits at a random address (the block table), which the hardware cannot predict.
// Always inlined: GCC deems an out-of-line function that only prefetches pure and deletes the
// call.
__attribute__((always_inline)) inline void prefetch_rows(const void* base, int64_t n,
                                                        int64_t stride_bytes, int64_t row_bytes) {
  const char* p = static_cast<const char*>(base);
  for (int64_t t = 0; t < n; ++t, p += stride_bytes) {
    for (int64_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(p + off, 0, 2);
    __builtin_prefetch(p + row_bytes - 1, 0, 2);
  }
}

// Position (in its sequence) of the item's first query token, and the number of keys its
// last row may see (causal: row of token j sees keys [0, pos0 + j]).
inline int64_t item_pos0(const AttnArgs& a, const AttnItem& it) {
  const int64_t qlen = a.query_start_loc[it.seq + 1] - a.query_start_loc[it.seq];
  return a.seq_lens[it.seq] - qlen + it.tile_start;
}

// Load the item's query rows (see AttnItem) as scaled fp32; rows past its own are zero.
template <class V, class T>
void load_query_rows(const AttnArgs& a, const AttnItem& it, float* q, int64_t rows, int64_t dp) {
  const int64_t R = it.n_heads * it.tile_len * (a.hq / a.hk);
  const int64_t q0 = a.query_start_loc[it.seq] + it.tile_start;
  const T* src = static_cast<const T*>(a.query);
  for (int64_t r = 0; r < rows; ++r) {
    if (r < R) {
      int64_t tok, head;
      row_coords(a, it, r, &tok, &head);
      load_row_f32<V, T>(q + r * dp, src + (q0 + tok) * a.q_tok_stride + head * a.q_head_stride,
                         a.d, dp, a.scale);
    } else {
      std::memset(q + r * dp, 0, dp * sizeof(float));
    }
  }
}

// Copy the item's query rows unscaled, packed [R][d] (for scorers working on the raw dtype).
template <class T>
void load_query_raw(const AttnArgs& a, const AttnItem& it, const T* src, T* dst, int64_t R) {
  const int64_t q0 = a.query_start_loc[it.seq] + it.tile_start;
  for (int64_t r = 0; r < R; ++r) {
    int64_t tok, head;
    row_coords(a, it, r, &tok, &head);
    std::memcpy(dst + r * a.d, src + (q0 + tok) * a.q_tok_stride + head * a.q_head_stride,
                a.d * sizeof(T));
  }
}

// out[row] = acc[row] / l[row] for the item's rows (a row that saw no key is written as 0).
template <class V, class T>
void store_rows(const AttnArgs& a, const AttnItem& it, const float* acc, const float* l,
                int64_t dp) {
  const int64_t D = a.d, q0 = a.query_start_loc[it.seq] + it.tile_start;
  T* out = static_cast<T*>(a.out);
  for (int64_t r = 0; r < it.n_heads * it.tile_len * (a.hq / a.hk); ++r) {
    int64_t tok, head;
    row_coords(a, it, r, &tok, &head);
    T* o = out + (q0 + tok) * a.out_tok_stride + head * a.out_head_stride;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    const float* accr = acc + r * dp;
    const typename V::R vi = V::set1(inv);
    int64_t i = 0;
    for (; i + V::W <= D; i += V::W) V::store(o + i, V::mul(V::load(accr + i), vi));
    for (; i < D; ++i) o[i] = from_f32<T>(accr[i] * inv);
  }
}

}  // namespace
}  // namespace vllm_cpu
