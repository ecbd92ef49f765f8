// Argument checks shared by the torch launchers: every failure names the op, the argument and
// the expected vs actual value.
#pragma once

#include <utility>
#include <ATen/ATen.h>
#include "cpu/kernels/api.h"

namespace vllm_cpu {

inline void check_cpu(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK(t.device().is_cpu(), op, ": ", arg, " must be a CPU tensor, got device ", t.device());
}

// fp32 / bf16 / fp16 -> kernel dtype tag.
inline DType float_dtype(const at::Tensor& t, const char* op, const char* arg) {
  check_cpu(t, op, arg);
  switch (t.scalar_type()) {
    case at::kFloat: return DType::f32;
    case at::kBFloat16: return DType::bf16;
    case at::kHalf: return DType::f16;
    default:
      TORCH_CHECK(false, op, ": ", arg, " must be float32, bfloat16 or float16, got ",
                  t.scalar_type());
  }
}

inline void check_dtype(const at::Tensor& t, at::ScalarType want, const char* op, const char* arg) {
  check_cpu(t, op, arg);
  TORCH_CHECK(t.scalar_type() == want, op, ": ", arg, " must have dtype ", want, ", got ",
              t.scalar_type());
}

inline void check_dim(const at::Tensor& t, int64_t dim, const char* op, const char* arg) {
  TORCH_CHECK(t.dim() == dim, op, ": ", arg, " must be ", dim, "-D, got shape ", t.sizes());
}

inline void check_contiguous(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK(t.is_contiguous(), op, ": ", arg, " must be contiguous, got strides ", t.strides(),
              " for shape ", t.sizes());
}

inline void check_last_contiguous(const at::Tensor& t, const char* op, const char* arg) {
  TORCH_CHECK(t.dim() >= 1 && (t.size(-1) <= 1 || t.stride(-1) == 1), op, ": ", arg,
              " must have a contiguous last dimension, got strides ", t.strides());
}

inline void check_size(const at::Tensor& t, int64_t dim, int64_t want, const char* op,
                       const char* arg) {
  TORCH_CHECK(t.size(dim) == want, op, ": ", arg, ".size(", dim, ") must be ", want, ", got ",
              t.size(dim), " (shape ", t.sizes(), ")");
}

// (min, max) of a 1-D contiguous int64 tensor by a plain loop: two ATen reductions plus
// .item() cost several microseconds, more than the kernels they guard at decode sizes.
inline std::pair<int64_t, int64_t> int64_range(const at::Tensor& t) {
  const int64_t* p = t.data_ptr<int64_t>();
  int64_t lo = p[0], hi = p[0];
  for (int64_t i = 1; i < t.numel(); ++i) {
    lo = p[i] < lo ? p[i] : lo;
    hi = p[i] > hi ? p[i] : hi;
  }
  return {lo, hi};
}

}  // namespace vllm_cpu
