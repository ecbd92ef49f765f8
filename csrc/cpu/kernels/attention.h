// Causal varlen paged attention (prefill chunks and decodes mixed), flash-attention style:
// one work item = (sequence, kv head, tile of query tokens); its rows are the tile's tokens x
// the GQA group's query heads, so every K/V block is converted to fp32 once and reused by all
// rows. Online softmax in fp32. Scratch rows are padded to a multiple of the vector width with
// zeros so every inner loop runs on full vectors.
#pragma once

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include "cpu/common/vec_scalar.h"
#include "cpu/kernels/api.h"

namespace vllm_cpu {
namespace {

struct AttnScratch {
  float *q, *acc, *k, *kt, *v, *s, *m, *l, *alpha;
  void* mem;
};

// rows: padded to a multiple of 4; dp: head size padded to the vector width; bsp: block size
// padded to the vector width.
inline AttnScratch attn_scratch(int64_t rows, int64_t dp, int64_t bsp) {
  const int64_t n = 2 * rows * dp + 3 * bsp * dp + rows * bsp + 3 * rows + 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, ((n * 4 + 63) / 64) * 64));
  AttnScratch s{};
  s.mem = p;
  s.q = p;
  s.acc = s.q + rows * dp;
  s.k = s.acc + rows * dp;
  s.kt = s.k + bsp * dp;
  s.v = s.kt + bsp * dp;
  s.s = s.v + bsp * dp;
  s.m = s.s + rows * bsp;
  s.l = s.m + rows;
  s.alpha = s.l + rows;
  return s;
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

template <class V>
float dot_f32(const float* a, const float* b, int64_t dp) {
  typename V::R s0 = V::zero(), s1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * V::W <= dp; i += 2 * V::W) {
    s0 = V::fma(V::load(a + i), V::load(b + i), s0);
    s1 = V::fma(V::load(a + i + V::W), V::load(b + i + V::W), s1);
  }
  for (; i < dp; i += V::W) s0 = V::fma(V::load(a + i), V::load(b + i), s0);
  return V::hsum(V::add(s0, s1));
}

// Scores for 4 rows at once against a transposed K block kt [D][bsp]: one vector of W keys per
// FMA, each K load reused by the 4 rows (the prefill path; no horizontal sums).
template <class V>
void qk_transposed(const float* q, int64_t rows4, int64_t dp, const float* kt, int64_t d,
                   int64_t bsp, int64_t n, float* s) {
  for (int64_t c = 0; c < n; c += V::W) {
    for (int64_t r = 0; r < rows4; r += 4) {
      const float *q0 = q + r * dp, *q1 = q0 + dp, *q2 = q1 + dp, *q3 = q2 + dp;
      typename V::R a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
      for (int64_t i = 0; i < d; ++i) {
        const typename V::R k = V::load(kt + i * bsp + c);
        a0 = V::fma(V::set1(q0[i]), k, a0);
        a1 = V::fma(V::set1(q1[i]), k, a1);
        a2 = V::fma(V::set1(q2[i]), k, a2);
        a3 = V::fma(V::set1(q3[i]), k, a3);
      }
      V::store(s + r * bsp + c, a0);
      V::store(s + (r + 1) * bsp + c, a1);
      V::store(s + (r + 2) * bsp + c, a2);
      V::store(s + (r + 3) * bsp + c, a3);
    }
  }
}

// Online-softmax update of one row over its nv visible keys (of n in the block): scores in s
// become probabilities (0 past nv), alpha is the factor for the old accumulator.
template <class V>
void softmax_row(float* s, int64_t nv, int64_t n, float* m, float* l, float* alpha) {
  float bmax = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < nv; ++t) bmax = s[t] > bmax ? s[t] : bmax;
  const float m_new = *m > bmax ? *m : bmax;
  *alpha = std::exp(*m - m_new);  // 0 on the first block (m = -inf)
  const typename V::R vm = V::set1(m_new);
  float psum = 0.0f;
  int64_t t = 0;
  for (; t + V::W <= nv; t += V::W) {
    typename V::R p = V::exp(V::sub(V::load(s + t), vm));
    V::store(s + t, p);
    psum += V::hsum(p);
  }
  for (; t < nv; ++t) psum += (s[t] = std::exp(s[t] - m_new));
  for (; t < n; ++t) s[t] = 0.0f;
  *l = *l * *alpha + psum;
  *m = m_new;
}

// acc[r] = acc[r] * alpha[r] + sum_t p[r, t] * v[t] for 4 rows at once (each V load reused 4x).
template <class V>
void pv_rows4(float* acc, const float* p, const float* alpha, const float* v, int64_t n,
              int64_t dp, int64_t bsp) {
  const typename V::R al0 = V::set1(alpha[0]), al1 = V::set1(alpha[1]);
  const typename V::R al2 = V::set1(alpha[2]), al3 = V::set1(alpha[3]);
  const float *p0 = p, *p1 = p + bsp, *p2 = p + 2 * bsp, *p3 = p + 3 * bsp;
  for (int64_t i = 0; i < dp; i += V::W) {
    typename V::R a0 = V::mul(V::load(acc + i), al0);
    typename V::R a1 = V::mul(V::load(acc + dp + i), al1);
    typename V::R a2 = V::mul(V::load(acc + 2 * dp + i), al2);
    typename V::R a3 = V::mul(V::load(acc + 3 * dp + i), al3);
    for (int64_t t = 0; t < n; ++t) {
      const typename V::R x = V::load(v + t * dp + i);
      a0 = V::fma(V::set1(p0[t]), x, a0);
      a1 = V::fma(V::set1(p1[t]), x, a1);
      a2 = V::fma(V::set1(p2[t]), x, a2);
      a3 = V::fma(V::set1(p3[t]), x, a3);
    }
    V::store(acc + i, a0);
    V::store(acc + dp + i, a1);
    V::store(acc + 2 * dp + i, a2);
    V::store(acc + 3 * dp + i, a3);
  }
}

struct AttnItem {
  int64_t seq, kv_head, tile_start, tile_len;
};

struct AttnDims {
  int64_t dp, bsp, rows4;
};

// Scores of every row against the n keys of one block (rows past R stay zero).
template <class V, class T>
void block_scores(const AttnArgs& a, AttnScratch& sc, const AttnDims& dm, const T* kc,
                  int64_t R, int64_t n, int64_t pos0, int64_t b) {
  const int64_t D = a.d, G = a.hq / a.hk, tok_stride = a.hk * D, BS = a.block_size;
  if (R >= 16) {  // prefill tile: transpose K once, then a register-blocked micro-kernel
    for (int64_t t = 0; t < dm.bsp; ++t)
      for (int64_t i = 0; i < D; ++i)
        sc.kt[i * dm.bsp + t] = t < n ? to_f32(kc[t * tok_stride + i]) : 0.0f;
    qk_transposed<V>(sc.q, dm.rows4, dm.dp, sc.kt, D, dm.bsp, n, sc.s);
    return;
  }
  for (int64_t t = 0; t < n; ++t)
    load_row_f32<V, T>(sc.k + t * dm.dp, kc + t * tok_stride, D, dm.dp, 1.0f);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t nv_r = pos0 + r / G + 1 - b * BS, nv = nv_r < n ? nv_r : n;
    for (int64_t t = 0; t < nv; ++t)
      sc.s[r * dm.bsp + t] = dot_f32<V>(sc.q + r * dm.dp, sc.k + t * dm.dp, dm.dp);
  }
}

template <class V, class T>
void store_rows(const AttnArgs& a, const AttnScratch& sc, const AttnItem& it, int64_t dp) {
  const int64_t D = a.d, G = a.hq / a.hk, q0 = a.query_start_loc[it.seq] + it.tile_start;
  T* out = static_cast<T*>(a.out);
  for (int64_t r = 0; r < it.tile_len * G; ++r) {
    const int64_t tok = q0 + r / G, head = it.kv_head * G + r % G;
    T* o = out + tok * a.out_tok_stride + head * a.out_head_stride;
    const float inv = sc.l[r] > 0.0f ? 1.0f / sc.l[r] : 0.0f;
    const float* accr = sc.acc + r * dp;
    const typename V::R vi = V::set1(inv);
    int64_t i = 0;
    for (; i + V::W <= D; i += V::W) V::store(o + i, V::mul(V::load(accr + i), vi));
    for (; i < D; ++i) o[i] = from_f32<T>(accr[i] * inv);
  }
}

template <class V, class T>
void attend_item(const AttnArgs& a, const AttnItem& it, AttnScratch& sc, const AttnDims& dm) {
  const int64_t D = a.d, G = a.hq / a.hk, BS = a.block_size, R = it.tile_len * G;
  const int64_t dp = dm.dp, rows4 = (R + 3) / 4 * 4;
  const int64_t q0 = a.query_start_loc[it.seq] + it.tile_start;
  const int64_t qlen = a.query_start_loc[it.seq + 1] - a.query_start_loc[it.seq];
  const int64_t pos0 = a.seq_lens[it.seq] - qlen + it.tile_start;  // position of row 0's token
  const T* q = static_cast<const T*>(a.query);
  for (int64_t r = 0; r < rows4; ++r) {
    const int64_t tok = q0 + r / G, head = it.kv_head * G + r % G;
    if (r < R) {
      load_row_f32<V, T>(sc.q + r * dp, q + tok * a.q_tok_stride + head * a.q_head_stride, D, dp,
                         a.scale);
    } else {
      std::memset(sc.q + r * dp, 0, dp * sizeof(float));
    }
    std::memset(sc.acc + r * dp, 0, dp * sizeof(float));
    sc.m[r] = -std::numeric_limits<float>::infinity();
    sc.l[r] = 0.0f;
  }
  const AttnDims dr{dp, dm.bsp, rows4};
  const int64_t nkv = pos0 + it.tile_len;  // keys the last row sees
  const int32_t* bt = a.block_tables + it.seq * a.bt_stride;
  const int64_t tok_stride = a.hk * D, blk_stride = BS * tok_stride;
  for (int64_t b = 0; b * BS < nkv; ++b) {
    const int64_t n = nkv - b * BS < BS ? nkv - b * BS : BS;
    const int64_t off = int64_t(bt[b]) * blk_stride + it.kv_head * D;
    block_scores<V, T>(a, sc, dr, static_cast<const T*>(a.key_cache) + off, R, n, pos0, b);
    const T* vc = static_cast<const T*>(a.value_cache) + off;
    for (int64_t t = 0; t < n; ++t)
      load_row_f32<V, T>(sc.v + t * dp, vc + t * tok_stride, D, dp, 1.0f);
    for (int64_t r = 0; r < rows4; ++r) {
      const int64_t nv_r = pos0 + r / G + 1 - b * BS, nv = nv_r < n ? nv_r : n;
      if (r < R && nv > 0) {
        softmax_row<V>(sc.s + r * dm.bsp, nv, n, sc.m + r, sc.l + r, sc.alpha + r);
      } else {
        for (int64_t t = 0; t < n; ++t) sc.s[r * dm.bsp + t] = 0.0f;
        sc.alpha[r] = 1.0f;
      }
    }
    for (int64_t r = 0; r < rows4; r += 4)
      pv_rows4<V>(sc.acc + r * dp, sc.s + r * dm.bsp, sc.alpha + r, sc.v, n, dp, dm.bsp);
  }
  store_rows<V, T>(a, sc, it, dp);
}

template <class V, class T>
void paged_attention_impl(const AttnArgs& a) {
  const int64_t G = a.hq / a.hk, dp = (a.d + V::W - 1) / V::W * V::W;
  const int64_t bsp = (a.block_size + V::W - 1) / V::W * V::W;
  int64_t qt = 64 / G > 1 ? 64 / G : 1;  // query tokens per tile: ~64 rows per work item
  if (qt > a.max_query_len && a.max_query_len > 0) qt = a.max_query_len;
  int64_t n_items = 0;
  for (int64_t s = 0; s < a.num_seqs; ++s) {
    const int64_t qlen = a.query_start_loc[s + 1] - a.query_start_loc[s];
    n_items += (qlen + qt - 1) / qt * a.hk;
  }
  AttnItem* items = static_cast<AttnItem*>(std::malloc(sizeof(AttnItem) * (n_items + 1)));
  int64_t w = 0;
  for (int64_t s = 0; s < a.num_seqs; ++s) {
    const int64_t qlen = a.query_start_loc[s + 1] - a.query_start_loc[s];
    for (int64_t j = 0; j < qlen; j += qt)
      for (int64_t h = 0; h < a.hk; ++h)
        items[w++] = AttnItem{s, h, j, qlen - j < qt ? qlen - j : qt};
  }
#pragma omp parallel if (n_items > 1)
  {
    AttnScratch sc = attn_scratch((qt * G + 3) / 4 * 4, dp, bsp);
    const AttnDims dm{dp, bsp, 0};
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n_items; ++i) attend_item<V, T>(a, items[i], sc, dm);
    std::free(sc.mem);
  }
  std::free(items);
}

}  // namespace
}  // namespace vllm_cpu
