// AVX512-BF16 scorer for the decode attention path (see bf16_dot.h). Only this function is
// compiled for avx512bf16; the table that uses it is chosen only on CPUs that report it.
#pragma once

#include <immintrin.h>
#include "cpu/common/vec_avx512.h"
#include "cpu/kernels/bf16_dot.h"

namespace vllm_cpu {
namespace {

// P @ V on bf16 pairs: p is rounded to bf16 (as flash attention does for its P @ V) and the
// products are summed in fp32. Two keys t, t+1 share one vdpbf16ps: their V rows are
// interleaved by 16-bit unpacks, which leaves each 32-dim chunk's accumulators in the lane
// order lo = dims {0-3, 8-11, 16-19, 24-27}, hi = dims {4-7, 12-15, 20-23, 28-31}; the softmax
// rescale is lane-uniform, so the order is fixed once, by unpermute, before the output store.
template <int NR>
__attribute__((target("avx512bf16"))) inline void pv_bf16_rows(
    float* acc, int64_t dp, const float* p, int64_t sp, const bf16* v, int64_t vs, int64_t n,
    int64_t d) {
  for (int64_t t0 = 0; t0 < n; t0 += 32) {
    const int64_t m = n - t0 < 32 ? n - t0 : 32, pairs = (m + 1) / 2;
    alignas(64) uint32_t pp[NR][16];  // (p_t, p_t+1) as bf16 pairs, zero past n
    const __mmask16 lo_mask = m >= 16 ? 0xffff : (1u << m) - 1;
    const __mmask16 hi_mask = m <= 16 ? 0 : (m >= 32 ? 0xffff : (1u << (m - 16)) - 1);
    for (int r = 0; r < NR; ++r) {
      const float* pr = p + r * sp + t0;
      const __m512 a = _mm512_maskz_loadu_ps(lo_mask, pr);
      const __m512 b = _mm512_maskz_loadu_ps(hi_mask, pr + 16);
      _mm512_store_si512(pp[r], (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
    for (int64_t c = 0; c < d; c += 32) {
      __m512 lo[NR], hi[NR];
      for (int r = 0; r < NR; ++r) {
        lo[r] = _mm512_loadu_ps(acc + r * dp + c);
        hi[r] = _mm512_loadu_ps(acc + r * dp + c + 16);
      }
      for (int64_t i = 0; i < pairs; ++i) {
        const int64_t t = t0 + 2 * i, t1 = t + 1 < n ? t + 1 : t;  // t1 = t: its p is 0
        const __m512i x0 = _mm512_loadu_si512(v + t * vs + c);
        const __m512i x1 = _mm512_loadu_si512(v + t1 * vs + c);
        const __m512bh blo = (__m512bh)_mm512_unpacklo_epi16(x0, x1);
        const __m512bh bhi = (__m512bh)_mm512_unpackhi_epi16(x0, x1);
        for (int r = 0; r < NR; ++r) {
          const __m512bh pa = (__m512bh)_mm512_set1_epi32(int(pp[r][i]));
          lo[r] = _mm512_dpbf16_ps(lo[r], pa, blo);
          hi[r] = _mm512_dpbf16_ps(hi[r], pa, bhi);
        }
      }
      for (int r = 0; r < NR; ++r) {
        _mm512_storeu_ps(acc + r * dp + c, lo[r]);
        _mm512_storeu_ps(acc + r * dp + c + 16, hi[r]);
      }
    }
  }
}

template <>
struct Bf16Dot<VecAvx512Bf16> {
  static constexpr bool kAvailable = true;

  // d must be a multiple of 32 (one vdpbf16ps covers 32 elements of the head dim).
  __attribute__((target("avx512bf16"))) static void score(const bf16* q, int64_t R, int64_t d,
                                                          const bf16* k, int64_t ks, int64_t n,
                                                          float* s, int64_t sp, float scale) {
    const __m512 vs = _mm512_set1_ps(scale);
    for (int64_t t0 = 0; t0 < n; t0 += 16) {
      const bf16* kr[16];
      for (int j = 0; j < 16; ++j) kr[j] = k + (t0 + j < n ? t0 + j : n - 1) * ks;
      for (int64_t r = 0; r < R; ++r) {
        const bf16* qr = q + r * d;
        __m512 acc[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
        for (int64_t c = 0; c < d; c += 32) {
          const __m512bh qv = (__m512bh)_mm512_loadu_si512(qr + c);
#pragma GCC unroll 16
          for (int j = 0; j < 16; ++j)
            acc[j] = _mm512_dpbf16_ps(acc[j], qv, (__m512bh)_mm512_loadu_si512(kr[j] + c));
        }
        _mm512_storeu_ps(s + r * sp + t0, _mm512_mul_ps(VecAvx512::hsum_lanes(acc), vs));
      }
    }
  }

  __attribute__((target("avx512bf16"))) static void pv(float* acc, int64_t R, int64_t dp,
                                                       const float* p, int64_t sp, const bf16* v,
                                                       int64_t vs, int64_t n, int64_t d) {
    int64_t r = 0;
    for (; r + 4 <= R; r += 4) pv_bf16_rows<4>(acc + r * dp, dp, p + r * sp, sp, v, vs, n, d);
    switch (R - r) {
      case 1: pv_bf16_rows<1>(acc + r * dp, dp, p + r * sp, sp, v, vs, n, d); break;
      case 2: pv_bf16_rows<2>(acc + r * dp, dp, p + r * sp, sp, v, vs, n, d); break;
      case 3: pv_bf16_rows<3>(acc + r * dp, dp, p + r * sp, sp, v, vs, n, d); break;
      default: break;
    }
  }

  // Back to dim order: chunk [lo | hi] -> dims [0-15 | 16-31].
  static void unpermute(float* acc, int64_t R, int64_t dp, int64_t d) {
    const __m512i i0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i i1 =
        _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < d; c += 32) {
        float* a = acc + r * dp + c;
        const __m512 lo = _mm512_loadu_ps(a), hi = _mm512_loadu_ps(a + 16);
        _mm512_storeu_ps(a, _mm512_permutex2var_ps(lo, i0, hi));
        _mm512_storeu_ps(a + 16, _mm512_permutex2var_ps(lo, i1, hi));
      }
  }
};

}  // namespace
}  // namespace vllm_cpu
