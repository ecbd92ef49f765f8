// Gated activations: out[r, i] = act(x[r, i]) * x[r, d + i] for silu, exact gelu, tanh gelu.
#pragma once

#include "cpu/common/vec_scalar.h"
#include "cpu/kernels/api.h"
#include "cpu/kernels/parallel.h"

namespace vllm_cpu {
namespace {

template <class V>
typename V::R vsilu(typename V::R x) {
  const typename V::R one = V::set1(1.0f);
  return V::mul(x, V::rcp(V::add(one, V::exp(V::sub(V::zero(), x)))));
}

// erf by Abramowitz & Stegun 7.1.26 (|abs err| < 1.5e-7), odd-extended to negative inputs.
template <class V>
typename V::R verf(typename V::R x) {
  using R = typename V::R;
  R ax = V::max(x, V::sub(V::zero(), x));
  R t = V::rcp(V::fma(V::set1(0.3275911f), ax, V::set1(1.0f)));
  R p = V::set1(1.061405429f);
  p = V::fma(p, t, V::set1(-1.453152027f));
  p = V::fma(p, t, V::set1(1.421413741f));
  p = V::fma(p, t, V::set1(-0.284496736f));
  p = V::fma(p, t, V::set1(0.254829592f));
  p = V::mul(p, t);
  R e = V::sub(V::set1(1.0f), V::mul(p, V::exp(V::sub(V::zero(), V::mul(ax, ax)))));
  return V::copysign(e, x);  // erf(-x) = -erf(x)
}

template <class V>
typename V::R vgelu(typename V::R x) {
  const typename V::R half = V::set1(0.5f);
  return V::mul(V::mul(half, x), V::add(V::set1(1.0f), verf<V>(V::mul(x, V::set1(0.70710678f)))));
}

template <class V>
typename V::R vgelu_tanh(typename V::R x) {
  using R = typename V::R;
  R x3 = V::mul(V::mul(x, x), x);
  R u = V::mul(V::set1(0.79788456f), V::fma(V::set1(0.044715f), x3, x));
  // tanh(u) = 1 - 2 / (exp(2u) + 1)
  R th = V::fma(V::set1(-2.0f), V::rcp(V::add(V::exp(V::add(u, u)), V::set1(1.0f))), V::set1(1.0f));
  return V::mul(V::mul(V::set1(0.5f), x), V::add(V::set1(1.0f), th));
}

template <class V, class T, Act kAct>
void act_rows(const ActArgs& a) {
  const int64_t d = a.d;
#pragma omp parallel for schedule(static) if (a.rows * d >= kParallelActElems)
  for (int64_t r = 0; r < a.rows; ++r) {
    const T* x = static_cast<const T*>(a.input) + r * a.in_stride;
    T* y = static_cast<T*>(a.out) + r * a.out_stride;
    int64_t i = 0;
    for (; i + V::W <= d; i += V::W) {
      typename V::R g = V::load(x + i);
      g = kAct == Act::silu ? vsilu<V>(g) : kAct == Act::gelu ? vgelu<V>(g) : vgelu_tanh<V>(g);
      V::store(y + i, V::mul(g, V::load(x + d + i)));
    }
    for (; i < d; ++i) {
      float g = to_f32(x[i]);
      g = kAct == Act::silu ? silu_f(g) : kAct == Act::gelu ? gelu_f(g) : gelu_tanh_f(g);
      y[i] = from_f32<T>(g * to_f32(x[d + i]));
    }
  }
}

template <class V, class T>
void act_and_mul_impl(const ActArgs& a) {
  switch (a.act) {
    case Act::silu: return act_rows<V, T, Act::silu>(a);
    case Act::gelu: return act_rows<V, T, Act::gelu>(a);
    case Act::gelu_tanh: return act_rows<V, T, Act::gelu_tanh>(a);
  }
}

}  // namespace
}  // namespace vllm_cpu
