// Paged attention for long query tiles (prefill chunks): rows = tile tokens x the GQA group
// (more than kFewRowsMax). Each K block is transposed to fp32 [D][bsp] once and scored by a
// 4-row register-blocked micro-kernel (one vector of W keys per FMA, no horizontal sums);
// online softmax per block; P @ V four rows at a time. Scratch rows are padded to a multiple
// of the vector width with zeros so every inner loop runs on full vectors.
#pragma once

#include "cpu/kernels/attention_common.h"

namespace vllm_cpu {
namespace {

struct AttnScratch {
  float *q, *acc, *kt, *v, *s, *m, *l, *alpha;
};

// rows: padded to a multiple of 4; dp: head size padded to the vector width; bsp: block size
// padded to the vector width.
inline AttnScratch attn_scratch(int64_t rows, int64_t dp, int64_t bsp) {
  float* p = thread_scratch(2 * rows * dp + 2 * bsp * dp + rows * bsp + 3 * rows);
  AttnScratch s{};
  s.q = p;
  s.acc = s.q + rows * dp;
  s.kt = s.acc + rows * dp;
  s.v = s.kt + bsp * dp;
  s.s = s.v + bsp * dp;
  s.m = s.s + rows * bsp;
  s.l = s.m + rows;
  s.alpha = s.l + rows;
  return s;
}

// Scores for 4 rows at once against a transposed K block kt [D][bsp]: one vector of W keys per
// FMA, each K load reused by the 4 rows.
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

// K block (n valid keys of T, token stride ts) -> kt [D][bsp] fp32, zero past n.
template <class T>
void transpose_block(float* kt, const T* kc, int64_t ts, int64_t n, int64_t d, int64_t bsp) {
  for (int64_t t = 0; t < bsp; ++t)
    for (int64_t i = 0; i < d; ++i) kt[i * bsp + t] = t < n ? to_f32(kc[t * ts + i]) : 0.0f;
}

template <class V, class T>
void attend_tile(const AttnArgs& a, const AttnItem& it) {
  const int64_t D = a.d, G = a.hq / a.hk, BS = a.block_size, R = it.tile_len * G;
  const int64_t dp = round_up(D, V::W), bsp = round_up(BS, V::W), rows4 = round_up(R, 4);
  AttnScratch sc = attn_scratch(rows4, dp, bsp);
  load_query_rows<V, T>(a, it, sc.q, rows4, dp);
  std::memset(sc.acc, 0, rows4 * dp * sizeof(float));
  for (int64_t r = 0; r < rows4; ++r) {
    sc.m[r] = -std::numeric_limits<float>::infinity();
    sc.l[r] = 0.0f;
  }
  const int64_t pos0 = item_pos0(a, it), nkv = pos0 + it.tile_len;  // keys the last row sees
  const int32_t* bt = a.block_tables + it.seq * a.bt_stride;
  const int64_t tok_stride = a.hk * D, blk_stride = BS * tok_stride;
  for (int64_t b = 0; b * BS < nkv; ++b) {
    const int64_t n = nkv - b * BS < BS ? nkv - b * BS : BS;
    const int64_t off = int64_t(bt[b]) * blk_stride + it.kv_head * D;
    transpose_block<T>(sc.kt, static_cast<const T*>(a.key_cache) + off, tok_stride, n, D, bsp);
    qk_transposed<V>(sc.q, rows4, dp, sc.kt, D, bsp, n, sc.s);
    const T* vc = static_cast<const T*>(a.value_cache) + off;
    for (int64_t t = 0; t < n; ++t)
      load_row_f32<V, T>(sc.v + t * dp, vc + t * tok_stride, D, dp, 1.0f);
    for (int64_t r = 0; r < rows4; ++r) {
      const int64_t nv_r = pos0 + r / G + 1 - b * BS, nv = nv_r < n ? nv_r : n;
      if (r < R && nv > 0) {
        softmax_row<V>(sc.s + r * bsp, nv, n, sc.m + r, sc.l + r, sc.alpha + r);
      } else {
        for (int64_t t = 0; t < n; ++t) sc.s[r * bsp + t] = 0.0f;
        sc.alpha[r] = 1.0f;
      }
    }
    for (int64_t r = 0; r < rows4; r += 4)
      pv_rows4<V>(sc.acc + r * dp, sc.s + r * bsp, sc.alpha + r, sc.v, n, dp, bsp);
  }
  store_rows<V, T>(a, it, sc.acc, sc.l, dp);
}

}  // namespace
}  // namespace vllm_cpu
