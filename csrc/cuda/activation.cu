// Launchers for silu_and_mul / gelu_and_mul / gelu_tanh_and_mul.
#include "common/torch_utils.h"
#include "cuda/activation.cuh"
#include "cuda/ops.h"

namespace vllm {
namespace {

template <typename Act>
void launch_act_and_mul(at::Tensor& out, const at::Tensor& input, const char* name) {
  check_cuda(input, "input");
  check_cuda(out, "out");
  check_same_dtype(out, input, "out", "input");
  check_last_contig(input, "input");
  check_last_contig(out, "out");
  const int64_t d = input.size(-1) / 2;
  TORCH_CHECK_VALUE(input.size(-1) % 2 == 0, name, ": input last dim ", input.size(-1), " must be even");
  TORCH_CHECK_VALUE(out.size(-1) == d, name, ": out last dim ", out.size(-1), " != input last dim / 2 = ", d);
  TORCH_CHECK_VALUE(out.numel() * 2 == input.numel(), name, ": out ", out.sizes(), " does not match input ",
              input.sizes());
  at::Tensor x = input.dim() == 2 ? input : input.reshape({-1, 2 * d});
  at::Tensor y = out.dim() == 2 ? out : out.view({-1, d});
  const int64_t rows = x.size(0);
  if (rows == 0 || d == 0) return;
  DeviceGuard guard(input.device());
  auto stream = current_stream();
  VLLM_DISPATCH_FLOAT(input.scalar_type(), name, [&] {
    constexpr int NV = 16 / sizeof(scalar_t);
    const bool vec = d % NV == 0 && aligned16(x.data_ptr()) && aligned16(y.data_ptr()) &&
                     x.stride(0) % NV == 0 && y.stride(0) % NV == 0;
    const int per = vec ? NV : 1;
    int threads = static_cast<int>(std::min<int64_t>(1024, (d / per + 31) / 32 * 32));
    threads = std::max(threads, 32);
    if (vec) {
      act_and_mul_kernel<scalar_t, NV, Act><<<rows, threads, 0, stream>>>(
          ptr<scalar_t>(y), y.stride(0), ptr<scalar_t>(x), x.stride(0), static_cast<int>(d));
    } else {
      act_and_mul_kernel<scalar_t, 1, Act><<<rows, threads, 0, stream>>>(
          ptr<scalar_t>(y), y.stride(0), ptr<scalar_t>(x), x.stride(0), static_cast<int>(d));
    }
  });
  VLLM_LAUNCH_CHECK();
}

}  // namespace

void silu_and_mul(at::Tensor& out, const at::Tensor& input) {
  launch_act_and_mul<SiluAct>(out, input, "silu_and_mul");
}
void gelu_and_mul(at::Tensor& out, const at::Tensor& input) {
  launch_act_and_mul<GeluAct>(out, input, "gelu_and_mul");
}
void gelu_tanh_and_mul(at::Tensor& out, const at::Tensor& input) {
  launch_act_and_mul<GeluTanhAct>(out, input, "gelu_tanh_and_mul");
}

}  // namespace vllm
