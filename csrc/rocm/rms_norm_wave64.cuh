// ROCm-tuned RMSNorm (framework-free): one 64-lane wavefront per row, several rows per block,
// no block-wide barrier. On CDNA a wavefront reduction needs no LDS, so rows of modest hidden
// size (<= 8192) finish without __syncthreads; the CUDA kernel keeps one block per row.
#pragma once

#include "common/portability.cuh"

namespace vllm {
namespace rocm {

constexpr int kRowsPerBlock = 4;

template <typename T, int N>
__global__ void rms_norm_wave_kernel(T* __restrict__ out, int64_t out_stride, const T* __restrict__ in,
                                     int64_t in_stride, const T* __restrict__ w, int rows, int hidden,
                                     float eps) {
  const int row = blockIdx.x * kRowsPerBlock + threadIdx.x / VLLM_WARP_SIZE;
  if (row >= rows) return;  // whole wavefront leaves together
  const int lane = threadIdx.x % VLLM_WARP_SIZE;
  using V = Vec<T, N>;
  const V* x = reinterpret_cast<const V*>(in + row * in_stride);
  V* y = reinterpret_cast<V*>(out + row * out_stride);
  const V* wv = reinterpret_cast<const V*>(w);
  const int nv = hidden / N;
  float ss = 0.f;
  for (int i = lane; i < nv; i += VLLM_WARP_SIZE) {
    const V a = x[i];
#pragma unroll
    for (int j = 0; j < N; ++j) ss += to_float(a.v[j]) * to_float(a.v[j]);
  }
  const float rstd = rsqrtf(warp_sum(ss) / hidden + eps);
  for (int i = lane; i < nv; i += VLLM_WARP_SIZE) {  // second read hits the cache
    const V a = x[i];
    const V b = wv[i];
    V o;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      o.v[j] = from_float<T>(to_float(from_float<T>(to_float(a.v[j]) * rstd)) * to_float(b.v[j]));
    }
    y[i] = o;
  }
}

}  // namespace rocm
}  // namespace vllm
