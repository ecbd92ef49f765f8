// Torch-side helpers shared by the CUDA and ROCm launchers: current stream, device guard,
// dtype dispatch to the device scalar types used by the kernel headers, argument checks.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include "common/portability.cuh"

#ifdef USE_ROCM
  #include <ATen/hip/impl/HIPGuardImplMasqueradingAsCUDA.h>
  #include <ATen/hip/impl/HIPStreamMasqueradingAsCUDA.h>
namespace vllm {
inline vllm_stream_t current_stream() { return at::hip::getCurrentHIPStreamMasqueradingAsCUDA(); }
using DeviceGuard = at::hip::OptionalHIPGuardMasqueradingAsCUDA;
}  // namespace vllm
  #define VLLM_LAUNCH_CHECK() TORCH_CHECK_VALUE(hipGetLastError() == hipSuccess, "kernel launch failed")
#else
  #include <c10/cuda/CUDAException.h>
  #include <c10/cuda/CUDAGuard.h>
  #include <c10/cuda/CUDAStream.h>
namespace vllm {
inline vllm_stream_t current_stream() { return c10::cuda::getCurrentCUDAStream(); }
using DeviceGuard = at::cuda::OptionalCUDAGuard;
}  // namespace vllm
  #define VLLM_LAUNCH_CHECK() C10_CUDA_KERNEL_LAUNCH_CHECK()
#endif

// Binds `scalar_t` to the device type of `dtype` (float, __half, bf16) and runs the body.
#define VLLM_DISPATCH_FLOAT(dtype, name, ...)                                              \
  [&] {                                                                                    \
    switch (dtype) {                                                                       \
      case at::ScalarType::Float: { using scalar_t = float; return __VA_ARGS__(); }        \
      case at::ScalarType::Half: { using scalar_t = __half; return __VA_ARGS__(); }        \
      case at::ScalarType::BFloat16: { using scalar_t = vllm_bf16_t; return __VA_ARGS__(); } \
      default:                                                                             \
        TORCH_CHECK_VALUE(false, name, ": dtype ", dtype, " is not supported (float32, float16, bfloat16)"); \
    }                                                                                      \
  }()

namespace vllm {

inline void check_cuda(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.is_cuda(), name, " must be a CUDA tensor, got device ", t.device());
}

inline void check_same_dtype(const at::Tensor& a, const at::Tensor& b, const char* an, const char* bn) {
  TORCH_CHECK_VALUE(a.scalar_type() == b.scalar_type(), an, " (", a.scalar_type(), ") and ", bn, " (",
              b.scalar_type(), ") must have the same dtype");
}

inline void check_last_contig(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.dim() >= 1 && t.stride(-1) == 1, name, " must be contiguous in its last dim");
}

template <typename T>
inline T* ptr(const at::Tensor& t) { return reinterpret_cast<T*>(t.data_ptr()); }

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace vllm
