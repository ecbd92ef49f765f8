// Portable "vector" of width 1: the kernels' fallback on CPUs without AVX2 (and their tails).
#pragma once

#include <cmath>
#include "cpu/common/dtypes.h"

namespace vllm_cpu {
namespace {

struct VecScalar {
  using R = float;
  static constexpr int W = 1;
  static const char* name() { return "scalar"; }
  static R zero() { return 0.0f; }
  static R set1(float x) { return x; }
  template <class T>
  static R load(const T* p) { return to_f32(*p); }
  template <class T>
  static void store(T* p, R v) { *p = from_f32<T>(v); }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R mul(R a, R b) { return a * b; }
  static R div(R a, R b) { return a / b; }
  static R fma(R a, R b, R c) { return a * b + c; }
  static R rcp(R x) { return 1.0f / x; }
  static R max(R a, R b) { return a > b ? a : b; }
  static R exp(R x) { return std::exp(x); }
  static R copysign(R mag, R sgn) { return std::copysign(mag, sgn); }
  static float hsum(R v) { return v; }
  __attribute__((always_inline)) static R hsum_lanes(const R* v) { return v[0]; }
  static float hmax(R v) { return v; }
};

}  // namespace
}  // namespace vllm_cpu
