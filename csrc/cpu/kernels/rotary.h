// Rotary position embedding applied in place to query and (optionally) key heads.
// neox: pairs (i, i + rot/2); gptj: pairs (2i, 2i + 1). Dims >= rot_dim are left untouched.
#pragma once

#include "cpu/common/vec_scalar.h"
#include "cpu/kernels/api.h"
#include "cpu/kernels/parallel.h"

namespace vllm_cpu {
namespace {

template <class V, class T>
void rotate_head_neox(T* x, const T* cos, const T* sin, int64_t half) {
  int64_t i = 0;
  for (; i + V::W <= half; i += V::W) {
    typename V::R x1 = V::load(x + i), x2 = V::load(x + half + i);
    typename V::R c = V::load(cos + i), s = V::load(sin + i);
    V::store(x + i, V::sub(V::mul(x1, c), V::mul(x2, s)));
    V::store(x + half + i, V::fma(x1, s, V::mul(x2, c)));
  }
  for (; i < half; ++i) {
    float x1 = to_f32(x[i]), x2 = to_f32(x[half + i]), c = to_f32(cos[i]), s = to_f32(sin[i]);
    x[i] = from_f32<T>(x1 * c - x2 * s);
    x[half + i] = from_f32<T>(x2 * c + x1 * s);
  }
}

template <class T>
void rotate_head_gptj(T* x, const T* cos, const T* sin, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    float x1 = to_f32(x[2 * i]), x2 = to_f32(x[2 * i + 1]), c = to_f32(cos[i]), s = to_f32(sin[i]);
    x[2 * i] = from_f32<T>(x1 * c - x2 * s);
    x[2 * i + 1] = from_f32<T>(x2 * c + x1 * s);
  }
}

template <class V, class T>
void rotate_heads(T* base, int64_t heads, int64_t head_stride, const T* cos, const T* sin,
                  int64_t half, bool neox) {
  for (int64_t h = 0; h < heads; ++h) {
    T* x = base + h * head_stride;
    if (neox) {
      rotate_head_neox<V, T>(x, cos, sin, half);
    } else {
      rotate_head_gptj<T>(x, cos, sin, half);
    }
  }
}

template <class V, class T>
void rotary_impl(const RotaryArgs& a) {
  const int64_t half = a.rot_dim / 2;
  const bool par = a.tokens * (a.hq + a.hk) * a.rot_dim >= kParallelRotaryElems;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t t = 0; t < a.tokens; ++t) {
    const T* cos = static_cast<const T*>(a.cos_sin) + a.positions[t] * a.cs_stride;
    const T* sin = cos + half;
    rotate_heads<V, T>(static_cast<T*>(a.query) + t * a.q_tok_stride, a.hq, a.q_head_stride,
                       cos, sin, half, a.is_neox);
    if (a.key != nullptr)
      rotate_heads<V, T>(static_cast<T*>(a.key) + t * a.k_tok_stride, a.hk, a.k_head_stride,
                         cos, sin, half, a.is_neox);
  }
}

}  // namespace
}  // namespace vllm_cpu
