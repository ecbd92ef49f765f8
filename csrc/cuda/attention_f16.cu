// Paged attention kernels for one dtype (see attention_launch.cuh).
#include "cuda/attention_launch.cuh"

namespace vllm {
template bool launch_paged_attention<__half>(const AttnParams&, int, int, int, vllm_stream_t);
}  // namespace vllm
