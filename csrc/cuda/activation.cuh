// Gated activations (framework-free): out[r, :d] = act(in[r, :d]) * in[r, d:2d].
#pragma once

#include "common/portability.cuh"

namespace vllm {

struct SiluAct {
  static VLLM_D float f(float x) { return x / (1.f + __expf(-x)); }
};
struct GeluAct {  // exact: 0.5 x (1 + erf(x / sqrt 2))
  static VLLM_D float f(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
};
struct GeluTanhAct {  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  static VLLM_D float f(float x) {
    const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.f + tanhf(u));
  }
};

// One block per row, N elements per access (N == 1 is the unaligned fallback).
// Rounds act(x) to T before the multiply, as the PyTorch reference does.
template <typename T, int N, typename Act>
__global__ void act_and_mul_kernel(T* __restrict__ out, int64_t out_stride, const T* __restrict__ in,
                                   int64_t in_stride, int d) {
  const T* x = in + blockIdx.x * in_stride;
  T* y = out + blockIdx.x * out_stride;
  using V = Vec<T, N>;
  const V* xa = reinterpret_cast<const V*>(x);
  const V* xb = reinterpret_cast<const V*>(x + d);
  V* yv = reinterpret_cast<V*>(y);
  const int nv = d / N;
  for (int i = threadIdx.x; i < nv; i += blockDim.x) {
    const V a = xa[i];
    const V b = xb[i];
    V o;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const float g = to_float(from_float<T>(Act::f(to_float(a.v[j]))));
      o.v[j] = from_float<T>(g * to_float(b.v[j]));
    }
    yv[i] = o;
  }
}

}  // namespace vllm
