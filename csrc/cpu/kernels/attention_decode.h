// Paged attention for items with few rows (decodes, short query chunks): rows = query tokens
// x the GQA group (per kv head at most kFewRowsMax); an item may cover several kv heads of its
// sequence, so a block's heads are read as one contiguous run. Keys are taken a chunk
// (~kChunkKeys, whole blocks) at a time:
//   1. scores: each K block is converted to fp32 once and shared by every row; for one row, W
//      keys are scored together (one accumulator per key, FMAs along the head dim, then one
//      transpose-and-add, V::hsum_lanes) instead of a horizontal sum per key;
//   2. one online-softmax update per row per chunk (not per block);
//   3. P @ V with register tiles of up to 4 rows x 4 vectors of the head dim, each V vector
//      loaded (and converted from bf16/fp16) once per tile and reused by every row.
// With bf16 K/V on an AVX512-BF16 CPU (Bf16Dot), steps 1 and 3 run on vdpbf16ps: raw bf16
// query and key rows (exact products, fp32 sums, no K conversion) and P rounded to bf16 for
// P @ V, as flash attention does. The next block is prefetched while one is in use (block
// tables point anywhere, so the hardware prefetchers cannot follow).
#pragma once

#include <type_traits>
#include "cpu/kernels/attention_common.h"
#include "cpu/kernels/bf16_dot.h"

namespace vllm_cpu {
namespace {

constexpr int64_t kFewRowsMax = 32;  // items up to this many rows take this path
constexpr int64_t kChunkKeys = 256;  // keys scored before each softmax / P@V pass

// s[r][t] = q[r] . k[t] for R rows q (stride dp) and nw keys k (fp32, stride dp, nw a multiple
// of W, zero-padded). For one row, W keys are scored together: one accumulator per key with
// FMAs along the head dim, then a single transpose-and-add (V::hsum_lanes).
template <class V>
void score_rows(const float* q, int64_t R, int64_t dp, const float* k, int64_t nw, float* s,
                int64_t sp) {
  using Rg = typename V::R;
  for (int64_t t0 = 0; t0 < nw; t0 += V::W) {
    const float* kt = k + t0 * dp;
    for (int64_t r = 0; r < R; ++r) {
      const float* qr = q + r * dp;
      Rg acc[V::W];
#pragma GCC unroll 16
      for (int j = 0; j < V::W; ++j) acc[j] = V::mul(V::load(qr), V::load(kt + j * dp));
      for (int64_t c = V::W; c < dp; c += V::W) {
        const Rg qv = V::load(qr + c);
#pragma GCC unroll 16
        for (int j = 0; j < V::W; ++j) acc[j] = V::fma(qv, V::load(kt + j * dp + c), acc[j]);
      }
      V::store(s + r * sp + t0, V::hsum_lanes(acc));
    }
  }
}

// Online softmax over one row's chunk: s[0..nv) become exp(s - m_new), s[nv..cw) zero;
// alpha rescales what the row accumulated before this chunk.
template <class V>
void chunk_softmax(float* s, int64_t nv, int64_t cw, float* m, float* l, float* alpha) {
  using R = typename V::R;
  if (nv <= 0) {  // the row's causal limit is before this chunk
    std::memset(s, 0, cw * sizeof(float));
    *alpha = 1.0f;
    return;
  }
  R vmax = V::set1(-std::numeric_limits<float>::infinity());
  int64_t t = 0;
  for (; t + V::W <= nv; t += V::W) vmax = V::max(vmax, V::load(s + t));
  float bmax = V::hmax(vmax);
  for (; t < nv; ++t) bmax = s[t] > bmax ? s[t] : bmax;
  const float m_new = *m > bmax ? *m : bmax;
  *alpha = std::exp(*m - m_new);  // 0 for the first chunk (m = -inf)
  const R vm = V::set1(m_new);
  R vsum = V::zero();
  for (t = 0; t + V::W <= nv; t += V::W) {
    const R p = V::exp(V::sub(V::load(s + t), vm));
    V::store(s + t, p);
    vsum = V::add(vsum, p);
  }
  float psum = V::hsum(vsum);
  for (; t < nv; ++t) psum += (s[t] = std::exp(s[t] - m_new));
  for (; t < cw; ++t) s[t] = 0.0f;
  *l = *l * *alpha + psum;
  *m = m_new;
}

// acc[r][c] += sum_t p[r][t] * v[t][c] for NR rows (stride dp / sp) and NC vectors of the head
// dim, over n keys (v rows of type S, stride vs elements).
template <class V, class S, int NR, int NC>
void pv_tile(float* acc, int64_t dp, const float* p, int64_t sp, const S* v, int64_t vs,
             int64_t n) {
  using R = typename V::R;
  R a[NR][NC];
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) a[r][c] = V::load(acc + r * dp + c * V::W);
  for (int64_t t = 0; t < n; ++t) {
    R x[NC];
    for (int c = 0; c < NC; ++c) x[c] = V::load(v + t * vs + c * V::W);
    for (int r = 0; r < NR; ++r) {
      const R pb = V::set1(p[r * sp + t]);
      for (int c = 0; c < NC; ++c) a[r][c] = V::fma(pb, x[c], a[r][c]);
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int c = 0; c < NC; ++c) V::store(acc + r * dp + c * V::W, a[r][c]);
}

template <class V, class S, int NR>
void pv_rows(float* acc, int64_t dp, const float* p, int64_t sp, const S* v, int64_t vs,
             int64_t n) {
  constexpr int64_t kMaxNC = V::W >= 16 ? 4 : 2;  // keep the tile within the register file
  for (int64_t c = 0; c < dp; c += kMaxNC * V::W) {
    const int64_t nc = (dp - c) / V::W < kMaxNC ? (dp - c) / V::W : kMaxNC;
    float* ac = acc + c;
    const S* vc = v + c;
    switch (nc) {
      case 1: pv_tile<V, S, NR, 1>(ac, dp, p, sp, vc, vs, n); break;
      case 2: pv_tile<V, S, NR, 2>(ac, dp, p, sp, vc, vs, n); break;
      case 3: pv_tile<V, S, NR, 3>(ac, dp, p, sp, vc, vs, n); break;
      default: pv_tile<V, S, NR, kMaxNC>(ac, dp, p, sp, vc, vs, n); break;
    }
  }
}

// All R rows: groups of 4, then the remainder.
template <class V, class S>
void pv_block(float* acc, int64_t R, int64_t dp, const float* p, int64_t sp, const S* v,
              int64_t vs, int64_t n) {
  int64_t r = 0;
  for (; r + 4 <= R; r += 4) pv_rows<V, S, 4>(acc + r * dp, dp, p + r * sp, sp, v, vs, n);
  switch (R - r) {
    case 1: pv_rows<V, S, 1>(acc + r * dp, dp, p + r * sp, sp, v, vs, n); break;
    case 2: pv_rows<V, S, 2>(acc + r * dp, dp, p + r * sp, sp, v, vs, n); break;
    case 3: pv_rows<V, S, 3>(acc + r * dp, dp, p + r * sp, sp, v, vs, n); break;
    default: break;
  }
}

struct DecodeBufs {
  float *q, *acc, *s, *k, *v, *m, *l, *alpha;
  bf16* qb;  // raw query rows [R][d] for the bf16 dot-product scorer
  int64_t dp, sp, ck;  // padded head dim, score row stride, keys per chunk
};

inline DecodeBufs decode_bufs(const AttnArgs& a, int64_t R, int64_t W) {
  DecodeBufs b{};
  b.dp = round_up(a.d, W);
  const int64_t cblocks = kChunkKeys / a.block_size > 1 ? kChunkKeys / a.block_size : 1;
  b.ck = cblocks * a.block_size;
  b.sp = round_up(b.ck + W, W);
  const int64_t kp = round_up(a.block_size, W);
  const int64_t qb_floats = round_up(R * a.d, 32) / 2;
  float* p = thread_scratch(2 * R * b.dp + R * b.sp + 2 * kp * b.dp + 3 * R + qb_floats);
  b.q = p;
  b.acc = b.q + R * b.dp;
  b.k = b.acc + R * b.dp;
  b.v = b.k + kp * b.dp;
  b.s = b.v + kp * b.dp;
  b.m = b.s + R * b.sp;
  b.l = b.m + R;
  b.alpha = b.l + R;
  b.qb = reinterpret_cast<bf16*>(b.alpha + R);
  return b;
}

// Block bi of the item's sequence in cache c: its first kv head's row of token 0.
template <class T>
inline const T* block_rows(const AttnArgs& a, const AttnItem& it, const void* c, int64_t bi) {
  const int32_t blk = a.block_tables[it.seq * a.bt_stride + bi];
  return static_cast<const T*>(c) + (int64_t(blk) * a.block_size * a.hk + it.kv_head) * a.d;
}

// Ask for block bi of cache c (the item's heads, its first n tokens) ahead of its use.
template <class T>
__attribute__((always_inline)) inline void prefetch_block(const AttnArgs& a, const AttnItem& it,
                                                         const void* c, int64_t bi,
                                                         int64_t nkv) {
  const int64_t BS = a.block_size, n = nkv - bi * BS < BS ? nkv - bi * BS : BS;
  if (n <= 0) return;
  const int64_t tok_bytes = a.hk * a.d * sizeof(T), span = it.n_heads * a.d * sizeof(T);
  if (span == tok_bytes) {  // all heads: the block's first n tokens are one contiguous run
    prefetch_rows(block_rows<T>(a, it, c, bi), 1, 0, n * tok_bytes);
  } else {
    prefetch_rows(block_rows<T>(a, it, c, bi), n, tok_bytes, span);
  }
}

template <class V, class T>
constexpr bool use_bf16_dot() {
  return std::is_same<T, bf16>::value && Bf16Dot<V>::kAvailable;
}

// Scores of all rows against the cn keys of the chunk starting at block b0: per block, each of
// the item's heads converts its K rows to fp32 once for its Rh rows.
template <class V, class T>
void chunk_scores(const AttnArgs& a, const AttnItem& it, DecodeBufs& b, int64_t Rh, int64_t b0,
                  int64_t cn, int64_t nkv) {
  const int64_t D = a.d, BS = a.block_size, tok_stride = a.hk * D, dp = b.dp;
  for (int64_t bi = 0; bi * BS < cn; ++bi) {
    const int64_t n = cn - bi * BS < BS ? cn - bi * BS : BS, nw = round_up(n, V::W);
    // the next K block, or the chunk's first V block
    if ((bi + 1) * BS < cn) {
      prefetch_block<T>(a, it, a.key_cache, b0 + bi + 1, nkv);
    } else {
      prefetch_block<T>(a, it, a.value_cache, b0, nkv);
    }
    const T* kb = block_rows<T>(a, it, a.key_cache, b0 + bi);
    if constexpr (use_bf16_dot<V, T>()) {
      if (a.d % 32 == 0) {
        for (int64_t hh = 0; hh < it.n_heads; ++hh)
          Bf16Dot<V>::score(b.qb + hh * Rh * D, Rh, D, kb + hh * D, tok_stride, n,
                            b.s + hh * Rh * b.sp + bi * BS, b.sp, a.scale);
        continue;
      }
    }
    for (int64_t hh = 0; hh < it.n_heads; ++hh) {
      for (int64_t t = 0; t < n; ++t)
        load_row_f32<V, T>(b.k + t * dp, kb + t * tok_stride + hh * D, D, dp, 1.0f);
      if (nw > n) std::memset(b.k + n * dp, 0, (nw - n) * dp * sizeof(float));
      score_rows<V>(b.q + hh * Rh * dp, Rh, dp, b.k, nw, b.s + hh * Rh * b.sp + bi * BS, b.sp);
    }
  }
}

// P @ V over the chunk's blocks; V rows are read straight from the cache when the head dim
// fills whole vectors, else through an fp32 copy padded to dp.
template <class V, class T>
void chunk_pv(const AttnArgs& a, const AttnItem& it, DecodeBufs& b, int64_t Rh, int64_t b0,
              int64_t cn, int64_t nkv) {
  const int64_t D = a.d, BS = a.block_size, tok_stride = a.hk * D, dp = b.dp;
  for (int64_t bi = 0; bi * BS < cn; ++bi) {
    const int64_t n = cn - bi * BS < BS ? cn - bi * BS : BS;
    // the next V block, or the next chunk's first K block
    prefetch_block<T>(a, it, (bi + 1) * BS < cn ? a.value_cache : a.key_cache, b0 + bi + 1, nkv);
    const T* vb = block_rows<T>(a, it, a.value_cache, b0 + bi);
    if constexpr (use_bf16_dot<V, T>()) {
      if (D % 32 == 0) {
        for (int64_t hh = 0; hh < it.n_heads; ++hh)
          Bf16Dot<V>::pv(b.acc + hh * Rh * dp, Rh, dp, b.s + hh * Rh * b.sp + bi * BS, b.sp,
                         vb + hh * D, tok_stride, n, D);
        continue;
      }
    }
    for (int64_t hh = 0; hh < it.n_heads; ++hh) {
      float* acc = b.acc + hh * Rh * dp;
      const float* p = b.s + hh * Rh * b.sp + bi * BS;
      if (D == dp) {
        pv_block<V, T>(acc, Rh, dp, p, b.sp, vb + hh * D, tok_stride, n);
      } else {
        for (int64_t t = 0; t < n; ++t)
          load_row_f32<V, T>(b.v + t * dp, vb + t * tok_stride + hh * D, D, dp, 1.0f);
        pv_block<V, float>(acc, Rh, dp, p, b.sp, b.v, dp, n);
      }
    }
  }
}

// Softmax update of every row over chunk c0 (cn keys), and the rescale of its accumulator.
template <class V>
void chunk_softmax_rows(DecodeBufs& b, int64_t R, int64_t Rh, int64_t G, int64_t pos0,
                        int64_t c0, int64_t cn) {
  const int64_t cw = round_up(cn, V::W), dp = b.dp;
  for (int64_t r = 0; r < R; ++r) {
    const int64_t vis = pos0 + (r % Rh) / G + 1 - c0, nv = vis < cn ? vis : cn;
    chunk_softmax<V>(b.s + r * b.sp, nv, cw, b.m + r, b.l + r, b.alpha + r);
    if (b.alpha[r] != 1.0f) {
      const typename V::R al = V::set1(b.alpha[r]);
      for (int64_t i = 0; i < dp; i += V::W)
        V::store(b.acc + r * dp + i, V::mul(V::load(b.acc + r * dp + i), al));
    }
  }
}

template <class V, class T>
void attend_few_rows(const AttnArgs& a, const AttnItem& it) {
  const int64_t G = a.hq / a.hk, Rh = it.tile_len * G, R = it.n_heads * Rh;
  DecodeBufs b = decode_bufs(a, R, V::W);
  const int64_t pos0 = item_pos0(a, it), nkv = pos0 + it.tile_len;  // keys the last row sees
  prefetch_block<T>(a, it, a.key_cache, 0, nkv);
  if constexpr (use_bf16_dot<V, T>()) {
    if (a.d % 32 == 0) load_query_raw(a, it, reinterpret_cast<const bf16*>(a.query), b.qb, R);
  }
  load_query_rows<V, T>(a, it, b.q, R, b.dp);
  std::memset(b.acc, 0, R * b.dp * sizeof(float));
  for (int64_t r = 0; r < R; ++r) {
    b.m[r] = -std::numeric_limits<float>::infinity();
    b.l[r] = 0.0f;
  }
  for (int64_t c0 = 0; c0 < nkv; c0 += b.ck) {
    const int64_t cn = nkv - c0 < b.ck ? nkv - c0 : b.ck;
    chunk_scores<V, T>(a, it, b, Rh, c0 / a.block_size, cn, nkv);
    chunk_softmax_rows<V>(b, R, Rh, G, pos0, c0, cn);
    chunk_pv<V, T>(a, it, b, Rh, c0 / a.block_size, cn, nkv);
  }
  if constexpr (use_bf16_dot<V, T>()) {
    if (a.d % 32 == 0) Bf16Dot<V>::unpermute(b.acc, R, b.dp, a.d);
  }
  store_rows<V, T>(a, it, b.acc, b.l, b.dp);
}

}  // namespace
}  // namespace vllm_cpu
