// RMSNorm kernels (framework-free). One block per row; each thread keeps up to CACHE
// vectors of its row in registers so the row is read from memory once.
#pragma once

#include "common/portability.cuh"

namespace vllm {

constexpr int kNormCache = 4;  // vectors per thread held in registers

// Loads element group i (N elements) of a row as floats.
template <typename T, int N>
VLLM_D void load_f(const T* row, int i, float (&f)[N]) {
  const Vec<T, N> a = reinterpret_cast<const Vec<T, N>*>(row)[i];
#pragma unroll
  for (int j = 0; j < N; ++j) f[j] = to_float(a.v[j]);
}

template <typename T, int N>
VLLM_D void store_f(T* row, int i, const float (&f)[N]) {
  Vec<T, N> a;
#pragma unroll
  for (int j = 0; j < N; ++j) a.v[j] = from_float<T>(f[j]);
  reinterpret_cast<Vec<T, N>*>(row)[i] = a;
}

// y = round(round(x * rstd) * w): the same two roundings as the PyTorch reference.
template <typename T, int N>
VLLM_D void norm_store(T* y, const T* w, int i, const float (&x)[N], float rstd) {
  float wf[N], o[N];
  load_f<T, N>(w, i, wf);
#pragma unroll
  for (int j = 0; j < N; ++j) o[j] = to_float(from_float<T>(x[j] * rstd)) * wf[j];
  store_f<T, N>(y, i, o);
}

// out[r] = rms_norm(in[r]) * w.  Row strides in elements; hidden % N == 0.
template <typename T, int N>
__global__ void rms_norm_kernel(T* __restrict__ out, int64_t out_stride, const T* __restrict__ in,
                                int64_t in_stride, const T* __restrict__ w, int hidden, float eps) {
  __shared__ float scratch[32];
  const T* x = in + blockIdx.x * in_stride;
  T* y = out + blockIdx.x * out_stride;
  const int nv = hidden / N;
  float cache[kNormCache][N];
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < kNormCache; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    if (i < nv) {
      load_f<T, N>(x, i, cache[k]);
#pragma unroll
      for (int j = 0; j < N; ++j) ss += cache[k][j] * cache[k][j];
    }
  }
  for (int i = threadIdx.x + kNormCache * blockDim.x; i < nv; i += blockDim.x) {
    float f[N];
    load_f<T, N>(x, i, f);
#pragma unroll
    for (int j = 0; j < N; ++j) ss += f[j] * f[j];
  }
  const float rstd = rsqrtf(block_sum(ss, scratch) / hidden + eps);
#pragma unroll
  for (int k = 0; k < kNormCache; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    if (i < nv) norm_store<T, N>(y, w, i, cache[k], rstd);
  }
  for (int i = threadIdx.x + kNormCache * blockDim.x; i < nv; i += blockDim.x) {
    float f[N];
    load_f<T, N>(x, i, f);
    norm_store<T, N>(y, w, i, f, rstd);
  }
}

// In place: residual <- round(x + residual); x <- rms_norm(x + residual) * w, normalising the
// float sum (as the reference does) while it is cached, the rounded residual beyond the cache.
template <typename T, int N>
__global__ void fused_add_rms_norm_kernel(T* __restrict__ inout, int64_t x_stride,
                                          T* __restrict__ residual, int64_t r_stride,
                                          const T* __restrict__ w, int hidden, float eps) {
  __shared__ float scratch[32];
  T* x = inout + blockIdx.x * x_stride;
  T* r = residual + blockIdx.x * r_stride;
  const int nv = hidden / N;
  float cache[kNormCache][N];
  float ss = 0.f;
  for (int i = threadIdx.x, k = 0; i < nv; i += blockDim.x, ++k) {
    float a[N], b[N];
    load_f<T, N>(x, i, a);
    load_f<T, N>(r, i, b);
#pragma unroll
    for (int j = 0; j < N; ++j) {
      a[j] += b[j];
      ss += a[j] * a[j];
    }
    store_f<T, N>(r, i, a);
#pragma unroll
    for (int c = 0; c < kNormCache; ++c) {
      if (c == k) {
#pragma unroll
        for (int j = 0; j < N; ++j) cache[c][j] = a[j];
      }
    }
  }
  const float rstd = rsqrtf(block_sum(ss, scratch) / hidden + eps);
#pragma unroll
  for (int k = 0; k < kNormCache; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    if (i < nv) norm_store<T, N>(x, w, i, cache[k], rstd);
  }
  for (int i = threadIdx.x + kNormCache * blockDim.x; i < nv; i += blockDim.x) {
    float f[N];
    load_f<T, N>(r, i, f);  // this thread wrote r[i] itself above: no barrier needed
    norm_store<T, N>(x, w, i, f, rstd);
  }
}

}  // namespace vllm
