// Launcher for gemv: argument checks, dtype / row-count / rows-per-warp dispatch.
#include "common/torch_utils.h"
#include "cuda/gemv.cuh"
#include "cuda/ops.h"

namespace vllm {
namespace {

struct GemvArgs {
  void* out;
  int64_t out_stride;
  const void* x;
  int64_t x_stride;
  const void* w;
  int64_t w_stride;
  const void* bias;
  int m, n, k;
};

template <typename T, int M, int ROWS>
void launch_cfg(const GemvArgs& a, vllm_stream_t stream) {
  constexpr int kUnroll = 8 / ROWS;  // 8 weight vectors in flight per lane
  constexpr int warps = kGemvThreads / VLLM_WARP_SIZE;
  const int blocks = ceil_div(a.n, ROWS * warps);
  gemv_kernel<T, M, ROWS, kUnroll><<<blocks, kGemvThreads, 0, stream>>>(
      static_cast<T*>(a.out), a.out_stride, static_cast<const T*>(a.x), a.x_stride,
      static_cast<const T*>(a.w), a.w_stride, static_cast<const T*>(a.bias), a.n, a.k);
}

template <typename T, int M>
void launch_rows(const GemvArgs& a, int rows_per_warp, vllm_stream_t stream) {
  switch (rows_per_warp) {
    case 1: return launch_cfg<T, M, 1>(a, stream);
    case 4: return launch_cfg<T, M, 4>(a, stream);
    default: return launch_cfg<T, M, 2>(a, stream);
  }
}

template <typename T>
void launch_m(const GemvArgs& a, int rows_per_warp, vllm_stream_t stream) {
  switch (a.m) {
    case 1: return launch_rows<T, 1>(a, rows_per_warp, stream);
    case 2: return launch_rows<T, 2>(a, rows_per_warp, stream);
    case 3: return launch_rows<T, 3>(a, rows_per_warp, stream);
    default: return launch_rows<T, 4>(a, rows_per_warp, stream);
  }
}

// Warps that own one output column each, for the default choice: one row per warp while that
// still leaves each SM few warps (better balance at the end of the pass), two for wide outputs
// (fewer, longer warps; the x loads are shared by both rows).
int auto_rows_per_warp(int n) { return n <= 16384 ? 1 : 2; }

void check_16bit_operand(const at::Tensor& t, const char* name, const at::Tensor& x) {
  check_cuda(t, name);
  check_same_dtype(t, x, name, "x");
  TORCH_CHECK_VALUE(t.dim() == 2 && t.stride(1) == 1, "gemv: ", name, " must be 2-D with a contiguous "
                    "last dim, got sizes ", t.sizes(), " strides ", t.strides());
  TORCH_CHECK_VALUE(t.stride(0) % 8 == 0 && aligned16(t.data_ptr()), "gemv: ", name,
                    " must be 16-byte aligned with a row stride divisible by 8, got stride ", t.stride(0));
}

}  // namespace

void gemv(at::Tensor& out, const at::Tensor& x, const at::Tensor& weight,
          const std::optional<at::Tensor>& bias, int64_t rows_per_warp) {
  TORCH_CHECK_VALUE(x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16,
                    "gemv: dtype ", x.scalar_type(), " is not supported (float16, bfloat16)");
  TORCH_CHECK_VALUE(x.dim() == 2 && weight.dim() == 2, "gemv: x and weight must be 2-D, got ",
                    x.sizes(), " and ", weight.sizes());
  const int64_t m = x.size(0), k = x.size(1), n = weight.size(0);
  TORCH_CHECK_VALUE(m >= 1 && m <= kGemvMaxRows, "gemv: x has ", m, " rows; the kernel takes 1 to ",
                    kGemvMaxRows);
  TORCH_CHECK_VALUE(weight.size(1) == k, "gemv: weight in-features ", weight.size(1), " != x features ", k);
  TORCH_CHECK_VALUE(k % 8 == 0 && k > 0, "gemv: in-features ", k, " must be a positive multiple of 8");
  check_16bit_operand(x, "x", x);
  check_16bit_operand(weight, "weight", x);
  check_cuda(out, "out");
  check_same_dtype(out, x, "out", "x");
  TORCH_CHECK_VALUE(n > 0 && n <= INT32_MAX && k <= INT32_MAX, "gemv: sizes out of range: n=", n, " k=", k);
  TORCH_CHECK_VALUE(out.dim() == 2 && out.size(0) == m && out.size(1) == n && out.stride(1) == 1,
                    "gemv: out must be [", m, ", ", n, "] with a contiguous last dim, got ", out.sizes());
  TORCH_CHECK_VALUE(rows_per_warp == 0 || rows_per_warp == 1 || rows_per_warp == 2 || rows_per_warp == 4,
                    "gemv: rows_per_warp must be 0 (auto), 1, 2 or 4, got ", rows_per_warp);
  const void* b = nullptr;
  if (bias.has_value()) {
    check_cuda(*bias, "bias");
    check_same_dtype(*bias, x, "bias", "x");
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == n && bias->is_contiguous(),
                      "gemv: bias must be a contiguous [", n, "] tensor, got ", bias->sizes());
    b = bias->data_ptr();
  }
  const int rows = rows_per_warp ? static_cast<int>(rows_per_warp) : auto_rows_per_warp(static_cast<int>(n));
  GemvArgs a{out.data_ptr(), out.stride(0), x.data_ptr(), x.stride(0), weight.data_ptr(), weight.stride(0),
             b, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k)};
  DeviceGuard guard(x.device());
  auto stream = current_stream();
  if (x.scalar_type() == at::kHalf) {
    launch_m<__half>(a, rows, stream);
  } else {
    launch_m<vllm_bf16_t>(a, rows, stream);
  }
  VLLM_LAUNCH_CHECK();
}

}  // namespace vllm
