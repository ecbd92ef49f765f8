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
  float *q, *acc, *k, *v, *s, *m, *l;
  void* mem;
};

inline AttnScratch attn_scratch(int64_t rows, int64_t dp, int64_t bs) {
  const int64_t n = 2 * rows * dp + 2 * bs * dp + rows * (bs + 16) + 2 * rows + 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, ((n * 4 + 63) / 64) * 64));
  AttnScratch s{};
  s.mem = p;
  s.q = p;
  s.acc = s.q + rows * dp;
  s.k = s.acc + rows * dp;
  s.v = s.k + bs * dp;
  s.s = s.v + bs * dp;
  s.m = s.s + rows * (bs + 16);
  s.l = s.m + rows;
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

// Scores of one row against nv keys, then the online-softmax update of (m, l, acc).
template <class V>
void attend_row(const float* q, float* acc, float* m, float* l, float* s, const float* k,
                const float* v, int64_t nv, int64_t dp) {
  float bmax = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < nv; ++t) {
    s[t] = dot_f32<V>(q, k + t * dp, dp);
    bmax = s[t] > bmax ? s[t] : bmax;
  }
  const float m_new = *m > bmax ? *m : bmax;
  const float alpha = std::exp(*m - m_new);  // 0 on the first block (m = -inf)
  const typename V::R vm = V::set1(m_new);
  float psum = 0.0f;
  int64_t t = 0;
  for (; t + V::W <= nv; t += V::W) {
    typename V::R p = V::exp(V::sub(V::load(s + t), vm));
    V::store(s + t, p);
    psum += V::hsum(p);
  }
  for (; t < nv; ++t) psum += (s[t] = std::exp(s[t] - m_new));
  *l = *l * alpha + psum;
  *m = m_new;
  const typename V::R va = V::set1(alpha);
  for (int64_t i = 0; i < dp; i += V::W) {
    typename V::R a = V::mul(V::load(acc + i), va);
    for (int64_t j = 0; j < nv; ++j) a = V::fma(V::set1(s[j]), V::load(v + j * dp + i), a);
    V::store(acc + i, a);
  }
}

struct AttnItem {
  int64_t seq, kv_head, tile_start, tile_len;
};

template <class V, class T>
void attend_item(const AttnArgs& a, const AttnItem& it, AttnScratch& sc, int64_t dp) {
  const int64_t D = a.d, G = a.hq / a.hk, BS = a.block_size, R = it.tile_len * G;
  const int64_t q0 = a.query_start_loc[it.seq] + it.tile_start;
  const int64_t qlen = a.query_start_loc[it.seq + 1] - a.query_start_loc[it.seq];
  const int64_t pos0 = a.seq_lens[it.seq] - qlen + it.tile_start;  // position of row 0's token
  const T* q = static_cast<const T*>(a.query);
  for (int64_t r = 0; r < R; ++r) {
    const int64_t tok = q0 + r / G, head = it.kv_head * G + r % G;
    load_row_f32<V, T>(sc.q + r * dp, q + tok * a.q_tok_stride + head * a.q_head_stride, D, dp,
                       a.scale);
    std::memset(sc.acc + r * dp, 0, dp * sizeof(float));
    sc.m[r] = -std::numeric_limits<float>::infinity();
    sc.l[r] = 0.0f;
  }
  const int64_t nkv = pos0 + it.tile_len;  // keys the last row sees
  const int32_t* bt = a.block_tables + it.seq * a.bt_stride;
  const int64_t tok_stride = a.hk * D, blk_stride = BS * tok_stride;
  for (int64_t b = 0; b * BS < nkv; ++b) {
    const int64_t n = nkv - b * BS < BS ? nkv - b * BS : BS;
    const int64_t off = int64_t(bt[b]) * blk_stride + it.kv_head * D;
    const T* kc = static_cast<const T*>(a.key_cache) + off;
    const T* vc = static_cast<const T*>(a.value_cache) + off;
    for (int64_t t = 0; t < n; ++t) {
      load_row_f32<V, T>(sc.k + t * dp, kc + t * tok_stride, D, dp, 1.0f);
      load_row_f32<V, T>(sc.v + t * dp, vc + t * tok_stride, D, dp, 1.0f);
    }
    for (int64_t r = 0; r < R; ++r) {
      const int64_t nv_r = pos0 + r / G + 1 - b * BS;
      const int64_t nv = nv_r < n ? nv_r : n;
      if (nv > 0)
        attend_row<V>(sc.q + r * dp, sc.acc + r * dp, sc.m + r, sc.l + r, sc.s, sc.k, sc.v, nv, dp);
    }
  }
  T* out = static_cast<T*>(a.out);
  for (int64_t r = 0; r < R; ++r) {
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
void paged_attention_impl(const AttnArgs& a) {
  const int64_t G = a.hq / a.hk, dp = (a.d + V::W - 1) / V::W * V::W;
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
    AttnScratch sc = attn_scratch(qt * G, dp, a.block_size);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n_items; ++i) attend_item<V, T>(a, items[i], sc, dp);
    std::free(sc.mem);
  }
  std::free(items);
}

}  // namespace
}  // namespace vllm_cpu
