// 16 x fp32 AVX-512 (F/BW/VL/DQ) vector. Include only from translation units built with the
// AVX-512 flags.
#pragma once

#include <immintrin.h>
#include "cpu/common/dtypes.h"

namespace vllm_cpu {

struct VecAvx512 {
  using R = __m512;
  static constexpr int W = 16;
  static const char* name() { return "avx512"; }
  static R zero() { return _mm512_setzero_ps(); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static R load(const bf16* p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  static R load(const fp16* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static void store(bf16* p, R v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    u = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
  }
  static void store(fp16* p, R v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R div(R a, R b) { return _mm512_div_ps(a, b); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  // 1/x: 14-bit estimate + one Newton step (~1e-7 relative; x must be finite and non-zero).
  static R rcp(R x) {
    R r = _mm512_rcp14_ps(x);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, set1(2.0f)));
  }
  static R max(R a, R b) { return _mm512_max_ps(a, b); }
  static R copysign(R mag, R sgn) {
    const __m512i m = _mm512_set1_epi32(0x80000000);
    __m512i r = _mm512_or_si512(_mm512_andnot_si512(m, _mm512_castps_si512(mag)),
                                _mm512_and_si512(m, _mm512_castps_si512(sgn)));
    return _mm512_castsi512_ps(r);
  }
  // Same polynomial as VecAvx2::exp.
  static R exp(R x) {
    x = _mm512_min_ps(_mm512_max_ps(x, set1(-87.33f)), set1(88.37f));
    R n = _mm512_roundscale_ps(_mm512_mul_ps(x, set1(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    R r = _mm512_fnmadd_ps(n, set1(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, set1(-2.12194440e-4f), r);
    R p = set1(1.9875691500e-4f);
    p = fma(p, r, set1(1.3981999507e-3f));
    p = fma(p, r, set1(8.3334519073e-3f));
    p = fma(p, r, set1(4.1665795894e-2f));
    p = fma(p, r, set1(1.6666665459e-1f));
    p = fma(p, r, set1(5.0000001201e-1f));
    p = fma(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, set1(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
  }
  static float hsum(R v) { return _mm512_reduce_add_ps(v); }
  // Lane j of the result = hsum(v[j]) for the W = 16 vectors v[0..15] (transpose-and-add:
  // 15 shuffle/add pairs instead of 16 separate horizontal sums).
  __attribute__((always_inline)) static R hsum_lanes(const R* v) {
    R x[4];
    for (int g = 0; g < 4; ++g) {
      const R a = v[4 * g], b = v[4 * g + 1], c = v[4 * g + 2], d = v[4 * g + 3];
      const R ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
      const R cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
      const __m512d abd = _mm512_castps_pd(ab), cdd = _mm512_castps_pd(cd);
      // per 128-bit lane: partial sums of a, b, c, d
      x[g] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(abd, cdd)),
                           _mm512_castpd_ps(_mm512_unpackhi_pd(abd, cdd)));
    }
    const R u01 = _mm512_add_ps(_mm512_shuffle_f32x4(x[0], x[1], 0x44),
                                _mm512_shuffle_f32x4(x[0], x[1], 0xEE));
    const R u23 = _mm512_add_ps(_mm512_shuffle_f32x4(x[2], x[3], 0x44),
                                _mm512_shuffle_f32x4(x[2], x[3], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_f32x4(u01, u23, 0x88),
                         _mm512_shuffle_f32x4(u01, u23, 0xDD));
  }
  static float hmax(R v) { return _mm512_reduce_max_ps(v); }
};

// The same vector for CPUs that also have AVX512-BF16: kernels that can use vdpbf16ps
// specialize on it (bf16_dot_avx512.h); everything else is VecAvx512's code.
struct VecAvx512Bf16 : VecAvx512 {
  static const char* name() { return "avx512_bf16"; }
};

}  // namespace vllm_cpu
