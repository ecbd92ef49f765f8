// CUDA/HIP portability for framework-free kernel headers (no torch includes here).
// The same .cu/.cuh sources compile with nvcc (CUDA) and with hipcc (-DUSE_ROCM, as HIP).
#pragma once

#ifdef USE_ROCM
  #include <hip/hip_runtime.h>
  #include <hip/hip_fp16.h>
  #if __has_include(<hip/hip_bf16.h>)  // ROCm >= 5.7 (what torch's ROCm wheels use)
    #include <hip/hip_bf16.h>
    #define VLLM_HIP_NATIVE_BF16 1
  using vllm_bf16_t = __hip_bfloat16;
  #else  // older HIP: the class type, converted through its float operators
    #include <hip/hip_bfloat16.h>
  using vllm_bf16_t = hip_bfloat16;
  #endif
  using vllm_stream_t = hipStream_t;
  #define VLLM_WARP_SIZE 64
  #define VLLM_SHFL_XOR(v, m) __shfl_xor((v), (m))
  #define VLLM_SHFL(v, src) __shfl((v), (src))
#else
  #include <cuda_runtime.h>
  #include <cuda_fp16.h>
  #include <cuda_bf16.h>
  using vllm_bf16_t = __nv_bfloat16;
  using vllm_stream_t = cudaStream_t;
  #define VLLM_WARP_SIZE 32
  #define VLLM_SHFL_XOR(v, m) __shfl_xor_sync(0xffffffffu, (v), (m))
  #define VLLM_SHFL(v, src) __shfl_sync(0xffffffffu, (v), (src))
#endif

#define VLLM_HD __host__ __device__ __forceinline__
#define VLLM_D __device__ __forceinline__

namespace vllm {

// ---- scalar conversions (compute in float) ------------------------------------------
VLLM_D float to_float(float x) { return x; }
VLLM_D float to_float(__half x) { return __half2float(x); }
#if defined(USE_ROCM) && !defined(VLLM_HIP_NATIVE_BF16)
VLLM_D float to_float(vllm_bf16_t x) { return static_cast<float>(x); }
#else
VLLM_D float to_float(vllm_bf16_t x) { return __bfloat162float(x); }
#endif

template <typename T> VLLM_D T from_float(float x);
template <> VLLM_D float from_float<float>(float x) { return x; }
template <> VLLM_D __half from_float<__half>(float x) { return __float2half_rn(x); }
#if defined(USE_ROCM) && !defined(VLLM_HIP_NATIVE_BF16)
template <> VLLM_D vllm_bf16_t from_float<vllm_bf16_t>(float x) { return vllm_bf16_t(x); }
#else
template <> VLLM_D vllm_bf16_t from_float<vllm_bf16_t>(float x) { return __float2bfloat16_rn(x); }
#endif

// ---- 16-byte vectors ----------------------------------------------------------------
// N elements of T moved as one aligned access (N * sizeof(T) == 16 for the fast path).
template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

template <typename T>
struct Vec16 {
  static constexpr int N = 16 / sizeof(T);
  using type = Vec<T, N>;
};

// ---- reductions ---------------------------------------------------------------------
template <int WIDTH = VLLM_WARP_SIZE>
VLLM_D float warp_sum(float v) {
#pragma unroll
  for (int m = WIDTH / 2; m > 0; m >>= 1) v += VLLM_SHFL_XOR(v, m);
  return v;
}

template <int WIDTH = VLLM_WARP_SIZE>
VLLM_D float warp_max(float v) {
#pragma unroll
  for (int m = WIDTH / 2; m > 0; m >>= 1) v = fmaxf(v, VLLM_SHFL_XOR(v, m));
  return v;
}

// Sum over the whole block; every thread gets the result. `scratch` holds >= 32 floats.
VLLM_D float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x % VLLM_WARP_SIZE;
  const int warp = threadIdx.x / VLLM_WARP_SIZE;
  const int nwarps = (blockDim.x + VLLM_WARP_SIZE - 1) / VLLM_WARP_SIZE;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : 0.f;
  return warp_sum(v);
}

VLLM_HD int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Number of multiprocessors (CUs on ROCm) of device `dev`; 0 if the query fails.
inline int device_sm_count(int dev) {
  int v = 0;
#ifdef USE_ROCM
  if (hipDeviceGetAttribute(&v, hipDeviceAttributeMultiprocessorCount, dev) != hipSuccess) v = 0;
#else
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) v = 0;
#endif
  return v;
}

}  // namespace vllm
