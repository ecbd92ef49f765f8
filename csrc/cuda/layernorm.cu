// Launchers for rms_norm / fused_add_rms_norm: argument checks, dtype and vector-width dispatch.
#include "common/torch_utils.h"
#include "cuda/layernorm.cuh"
#include "cuda/ops.h"

namespace vllm {
namespace {

// [..., hidden] -> [rows, hidden] view (last dim contiguous; leading dims must collapse).
at::Tensor as_rows(const at::Tensor& t, int64_t hidden, const char* name) {
  check_last_contig(t, name);
  TORCH_CHECK_VALUE(t.size(-1) == hidden, name, ": last dim ", t.size(-1), " != hidden size ", hidden);
  if (t.dim() == 2) return t;
  auto v = t.view({-1, hidden});  // throws if the leading dims cannot be merged
  return v;
}

int norm_threads(int nv) {
  int t = ((nv + 1) / 2 + 31) / 32 * 32;
  return t < 32 ? 32 : (t > 1024 ? 1024 : t);
}

template <typename T>
bool can_vec(int hidden, std::initializer_list<const at::Tensor*> ts) {
  constexpr int N = 16 / sizeof(T);
  if (hidden % N) return false;
  for (auto* t : ts) {
    if (!aligned16(t->data_ptr()) || (t->dim() > 1 && t->stride(0) % N)) return false;
  }
  return true;
}

}  // namespace

void rms_norm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double epsilon) {
  check_cuda(input, "input");
  check_cuda(out, "out");
  check_cuda(weight, "weight");
  TORCH_CHECK_VALUE(weight.dim() == 1 && weight.is_contiguous(), "weight must be a contiguous 1-D tensor");
  const int64_t hidden = weight.size(0);
  check_same_dtype(out, input, "out", "input");
  TORCH_CHECK_VALUE(out.sizes() == input.sizes(), "out shape ", out.sizes(), " != input shape ",
                    input.sizes());
  at::Tensor x = as_rows(input, hidden, "input");
  at::Tensor y = as_rows(out, hidden, "out");
  at::Tensor w = weight.scalar_type() == input.scalar_type() ? weight : weight.to(input.scalar_type());
  const int rows = static_cast<int>(x.size(0));
  if (rows == 0 || hidden == 0) return;
  DeviceGuard guard(input.device());
  auto stream = current_stream();
  VLLM_DISPATCH_FLOAT(input.scalar_type(), "rms_norm", [&] {
    constexpr int NV = 16 / sizeof(scalar_t);
    if (can_vec<scalar_t>(hidden, {&x, &y, &w})) {
      rms_norm_kernel<scalar_t, NV><<<rows, norm_threads(hidden / NV), 0, stream>>>(
          ptr<scalar_t>(y), y.stride(0), ptr<scalar_t>(x), x.stride(0), ptr<scalar_t>(w), hidden, epsilon);
    } else {
      rms_norm_kernel<scalar_t, 1><<<rows, norm_threads(hidden), 0, stream>>>(
          ptr<scalar_t>(y), y.stride(0), ptr<scalar_t>(x), x.stride(0), ptr<scalar_t>(w), hidden, epsilon);
    }
  });
  VLLM_LAUNCH_CHECK();
}

void fused_add_rms_norm(at::Tensor& input, at::Tensor& residual, const at::Tensor& weight,
                        double epsilon) {
  check_cuda(input, "input");
  check_cuda(residual, "residual");
  check_cuda(weight, "weight");
  TORCH_CHECK_VALUE(weight.dim() == 1 && weight.is_contiguous(), "weight must be a contiguous 1-D tensor");
  const int64_t hidden = weight.size(0);
  check_same_dtype(residual, input, "residual", "input");
  TORCH_CHECK_VALUE(residual.sizes() == input.sizes(), "residual shape ", residual.sizes(),
              " != input shape ", input.sizes());
  at::Tensor x = as_rows(input, hidden, "input");
  at::Tensor r = as_rows(residual, hidden, "residual");
  at::Tensor w = weight.scalar_type() == input.scalar_type() ? weight : weight.to(input.scalar_type());
  const int rows = static_cast<int>(x.size(0));
  if (rows == 0 || hidden == 0) return;
  DeviceGuard guard(input.device());
  auto stream = current_stream();
  VLLM_DISPATCH_FLOAT(input.scalar_type(), "fused_add_rms_norm", [&] {
    constexpr int NV = 16 / sizeof(scalar_t);
    if (can_vec<scalar_t>(hidden, {&x, &r, &w})) {
      fused_add_rms_norm_kernel<scalar_t, NV><<<rows, norm_threads(hidden / NV), 0, stream>>>(
          ptr<scalar_t>(x), x.stride(0), ptr<scalar_t>(r), r.stride(0), ptr<scalar_t>(w), hidden, epsilon);
    } else {
      fused_add_rms_norm_kernel<scalar_t, 1><<<rows, norm_threads(hidden), 0, stream>>>(
          ptr<scalar_t>(x), x.stride(0), ptr<scalar_t>(r), r.stride(0), ptr<scalar_t>(w), hidden, epsilon);
    }
  });
  VLLM_LAUNCH_CHECK();
}

}  // namespace vllm
