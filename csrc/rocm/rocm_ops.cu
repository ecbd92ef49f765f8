// _rocm_C: ROCm-only ops. rms_norm (wavefront-per-row variant) and device_info.
#include "common/torch_utils.h"
#include "rocm/rms_norm_wave64.cuh"

namespace vllm {
namespace rocm {

void rms_norm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double epsilon) {
  check_cuda(input, "input");
  check_cuda(out, "out");
  TORCH_CHECK_VALUE(input.dim() == 2 && out.sizes() == input.sizes(),
                    "input/out must be [T, hidden] of one shape");
  check_last_contig(input, "input");
  check_last_contig(out, "out");
  check_same_dtype(out, input, "out", "input");
  TORCH_CHECK_VALUE(weight.dim() == 1 && weight.size(0) == input.size(1) && weight.is_contiguous(),
              "weight must be contiguous [hidden=", input.size(1), "]");
  const at::Tensor w = weight.to(input.scalar_type());
  const int rows = static_cast<int>(input.size(0)), hidden = static_cast<int>(input.size(1));
  if (rows == 0) return;
  DeviceGuard guard(input.device());
  auto stream = current_stream();
  const dim3 grid(ceil_div(rows, kRowsPerBlock)), block(kRowsPerBlock * VLLM_WARP_SIZE);
  VLLM_DISPATCH_FLOAT(input.scalar_type(), "rms_norm", [&] {
    constexpr int NV = 16 / sizeof(scalar_t);
    const bool vec = hidden % NV == 0 && aligned16(input.data_ptr()) && aligned16(out.data_ptr()) &&
                     aligned16(w.data_ptr()) && input.stride(0) % NV == 0 && out.stride(0) % NV == 0;
    if (vec) {
      rms_norm_wave_kernel<scalar_t, NV><<<grid, block, 0, stream>>>(
          ptr<scalar_t>(out), out.stride(0), ptr<scalar_t>(input), input.stride(0), ptr<scalar_t>(w), rows,
          hidden, static_cast<float>(epsilon));
    } else {
      rms_norm_wave_kernel<scalar_t, 1><<<grid, block, 0, stream>>>(
          ptr<scalar_t>(out), out.stride(0), ptr<scalar_t>(input), input.stride(0), ptr<scalar_t>(w), rows,
          hidden, static_cast<float>(epsilon));
    }
  });
  VLLM_LAUNCH_CHECK();
}

// [wavefront size, compute units, LDS bytes per block] of `device`.
std::vector<int64_t> device_info(int64_t device) {
  int cus = device_sm_count(static_cast<int>(device));
  int lds = 0;
#ifdef USE_ROCM
  (void)hipDeviceGetAttribute(&lds, hipDeviceAttributeMaxSharedMemoryPerBlock, static_cast<int>(device));
#else
  (void)cudaDeviceGetAttribute(&lds, cudaDevAttrMaxSharedMemoryPerBlock, static_cast<int>(device));
#endif
  return {VLLM_WARP_SIZE, cus, lds};
}

}  // namespace rocm
}  // namespace vllm

TORCH_LIBRARY(_rocm_C, m) {
  m.def("rms_norm(Tensor! out, Tensor input, Tensor weight, float epsilon) -> ()");
  m.def("device_info(int device) -> int[]", &vllm::rocm::device_info);
}

TORCH_LIBRARY_IMPL(_rocm_C, CUDA, m) {  // ROCm torch routes HIP tensors through the CUDA key
  m.impl("rms_norm", &vllm::rocm::rms_norm);
}
