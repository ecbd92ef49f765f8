// Decode-sized GEMMs (framework-free): out[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]) for a few
// rows m < M <= 4, 16-bit x and w, fp32 accumulation, one rounding to T at the end.
//
// Why not cuBLAS: for M <= 4 the product is one pass over the weights, and cuBLAS picks split-K
// kernels for some shapes (Llama-3.1-8B's o_proj and down_proj at batch 1) that stream at about
// half the memory bandwidth and add a second, reduce kernel. Here one warp owns ROWS output
// columns and streams their weight rows in 16-byte vectors with UNROLL x ROWS loads in flight
// per lane; a warp sum finishes each dot product, so there is no second kernel.
#pragma once

#include "common/portability.cuh"

namespace vllm {

constexpr int kGemvThreads = 256;
constexpr int kGemvMaxRows = 4;  // largest M

// 16 bytes of weights; each is read once per call, so keep them out of L1 where we can.
VLLM_D uint4 gemv_load_weights(const uint4* p) {
#ifdef USE_ROCM
  return *p;
#else
  return __ldcs(p);
#endif
}

// acc += dot(a[0:8], b[0:8]) for 8 packed 16-bit values.
template <typename T>
VLLM_D void gemv_dot8(float& acc, const uint4& a, const uint4& b) {
  const T* x = reinterpret_cast<const T*>(&a);
  const T* y = reinterpret_cast<const T*>(&b);
#pragma unroll
  for (int j = 0; j < 8; ++j) acc = fmaf(to_float(x[j]), to_float(y[j]), acc);
}

// Grid: ceil(N / (ROWS * warps per block)) blocks of kGemvThreads. K % 8 == 0; x, w 16-byte
// aligned with row strides (in elements) multiples of 8.
template <typename T, int M, int ROWS, int UNROLL>
__global__ void __launch_bounds__(kGemvThreads)
gemv_kernel(T* __restrict__ out, int64_t out_stride, const T* __restrict__ x, int64_t x_stride,
            const T* __restrict__ w, int64_t w_stride, const T* __restrict__ bias, int n, int k) {
  constexpr int W = VLLM_WARP_SIZE;
  const int lane = threadIdx.x % W;
  const int n0 = (blockIdx.x * (blockDim.x / W) + threadIdx.x / W) * ROWS;
  if (n0 >= n) return;
  const int kv = k / 8;  // 16-byte vectors per row
  const uint4* wr[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {  // rows past n repeat the last one; their sums are dropped
    const int row = n0 + r < n ? n0 + r : n - 1;
    wr[r] = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(row) * w_stride);
  }
  const uint4* xr[M];
#pragma unroll
  for (int m = 0; m < M; ++m) xr[m] = reinterpret_cast<const uint4*>(x + m * x_stride);
  float acc[M][ROWS];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[m][r] = 0.f;

  int i = lane;
  for (; i + (UNROLL - 1) * W < kv; i += UNROLL * W) {
    uint4 wv[UNROLL][ROWS];  // all weight loads issued before any use
#pragma unroll
    for (int u = 0; u < UNROLL; ++u)
#pragma unroll
      for (int r = 0; r < ROWS; ++r) wv[u][r] = gemv_load_weights(wr[r] + i + u * W);
#pragma unroll
    for (int u = 0; u < UNROLL; ++u)
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const uint4 xv = xr[m][i + u * W];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) gemv_dot8<T>(acc[m][r], xv, wv[u][r]);
      }
  }
  for (; i < kv; i += W) {  // the tail: fewer than UNROLL vectors per lane left
    uint4 wv[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) wv[r] = gemv_load_weights(wr[r] + i);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const uint4 xv = xr[m][i];
#pragma unroll
      for (int r = 0; r < ROWS; ++r) gemv_dot8<T>(acc[m][r], xv, wv[r]);
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[m][r] = warp_sum(acc[m][r]);
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      if (n0 + r >= n) break;
      const float b = bias != nullptr ? to_float(bias[n0 + r]) : 0.f;
#pragma unroll
      for (int m = 0; m < M; ++m) out[m * out_stride + n0 + r] = from_float<T>(acc[m][r] + b);
    }
  }
}

}  // namespace vllm
