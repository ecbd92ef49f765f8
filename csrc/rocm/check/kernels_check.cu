// Compile-only check of every framework-free kernel header as HIP (no torch needed):
//   HIP_PLATFORM=amd hipcc -x hip --offload-arch=gfx90a -DUSE_ROCM -Icsrc -c csrc/rocm/check/kernels_check.cu
// Instantiates each kernel template for each dtype; the launchers need a ROCm build of torch.
#include "cuda/activation.cuh"
#include "cuda/attention_launch.cuh"
#include "cuda/cache.cuh"
#include "cuda/gemv.cuh"
#include "cuda/layernorm.cuh"
#include "cuda/rotary.cuh"
#include "rocm/rms_norm_wave64.cuh"

namespace vllm {

template <typename T>
void instantiate_all() {
  constexpr int N = 16 / sizeof(T);
  auto* a = &rms_norm_kernel<T, N>;
  auto* b = &fused_add_rms_norm_kernel<T, 1>;
  auto* c = &act_and_mul_kernel<T, N, SiluAct>;
  auto* d = &act_and_mul_kernel<T, 1, GeluAct>;
  auto* e = &act_and_mul_kernel<T, N, GeluTanhAct>;
  auto* f = &rotary_kernel<T, float, true>;
  auto* g = &rotary_kernel<T, T, false>;
  auto* h = &reshape_and_cache_kernel<T, N>;
  auto* i = &rocm::rms_norm_wave_kernel<T, N>;
  (void)a; (void)b; (void)c; (void)d; (void)e; (void)f; (void)g; (void)h; (void)i;
  AttnParams p{};
  (void)launch_paged_attention<T>(p, 128, 4, 1, nullptr);
}

template <typename T>
void instantiate_gemv() {  // 16-bit types only
  auto* a = &gemv_kernel<T, 1, 1, 8>;
  auto* b = &gemv_kernel<T, 4, 2, 4>;
  (void)a; (void)b;
}

template void instantiate_all<float>();
template void instantiate_all<__half>();
template void instantiate_all<vllm_bf16_t>();
template void instantiate_gemv<__half>();
template void instantiate_gemv<vllm_bf16_t>();

}  // namespace vllm
