// RMSNorm kernels (plain and with fused residual add), templated on vector ISA V and dtype T.
// Framework-free: raw pointers + row strides; rows are split across OpenMP threads.
#pragma once

#include "cpu/common/vec_scalar.h"
#include "cpu/kernels/api.h"
#include "cpu/kernels/parallel.h"

namespace vllm_cpu {
namespace {

// Sum of squares of (a [+ b]) over one row, in fp32.
template <class V, class T, bool kAdd>
float row_sumsq(const T* a, const T* b, int64_t n) {
  typename V::R acc0 = V::zero(), acc1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * V::W <= n; i += 2 * V::W) {
    typename V::R x0 = V::load(a + i), x1 = V::load(a + i + V::W);
    if (kAdd) {
      x0 = V::add(x0, V::load(b + i));
      x1 = V::add(x1, V::load(b + i + V::W));
    }
    acc0 = V::fma(x0, x0, acc0);
    acc1 = V::fma(x1, x1, acc1);
  }
  for (; i + V::W <= n; i += V::W) {
    typename V::R x = V::load(a + i);
    if (kAdd) x = V::add(x, V::load(b + i));
    acc0 = V::fma(x, x, acc0);
  }
  float s = V::hsum(V::add(acc0, acc1));
  for (; i < n; ++i) {
    float x = to_f32(a[i]) + (kAdd ? to_f32(b[i]) : 0.0f);
    s += x * x;
  }
  return s;
}

template <class V, class T>
void rms_norm_impl(const RmsNormArgs& a) {
  const int64_t H = a.hidden;
  const T* w = static_cast<const T*>(a.weight);
#pragma omp parallel for schedule(static) if (a.rows * H >= kParallelNormElems)
  for (int64_t r = 0; r < a.rows; ++r) {
    const T* x = static_cast<const T*>(a.input) + r * a.in_stride;
    T* y = static_cast<T*>(a.out) + r * a.out_stride;
    const float inv = 1.0f / std::sqrt(row_sumsq<V, T, false>(x, nullptr, H) / H + a.eps);
    const typename V::R vinv = V::set1(inv);
    int64_t i = 0;
    for (; i + V::W <= H; i += V::W)
      V::store(y + i, V::mul(V::mul(V::load(x + i), vinv), V::load(w + i)));
    for (; i < H; ++i) y[i] = from_f32<T>(to_f32(x[i]) * inv * to_f32(w[i]));
  }
}

// residual <- x + residual (rounded to T); x <- rms_norm(x + residual in fp32) * w.
template <class V, class T>
void fused_add_rms_norm_impl(const RmsNormArgs& a) {
  const int64_t H = a.hidden;
  const T* w = static_cast<const T*>(a.weight);
#pragma omp parallel for schedule(static) if (a.rows * H >= kParallelNormElems)
  for (int64_t r = 0; r < a.rows; ++r) {
    T* x = static_cast<T*>(a.input) + r * a.in_stride;
    T* res = static_cast<T*>(a.residual) + r * a.res_stride;
    const float inv = 1.0f / std::sqrt(row_sumsq<V, T, true>(x, res, H) / H + a.eps);
    const typename V::R vinv = V::set1(inv);
    int64_t i = 0;
    for (; i + V::W <= H; i += V::W) {
      typename V::R s = V::add(V::load(x + i), V::load(res + i));
      V::store(res + i, s);
      V::store(x + i, V::mul(V::mul(s, vinv), V::load(w + i)));
    }
    for (; i < H; ++i) {
      float s = to_f32(x[i]) + to_f32(res[i]);
      res[i] = from_f32<T>(s);
      x[i] = from_f32<T>(s * inv * to_f32(w[i]));
    }
  }
}

}  // namespace
}  // namespace vllm_cpu
