// Head-size / GQA-chunk dispatch of the paged attention kernels; instantiated once per dtype
// (attention_<dtype>.cu) so the three dtypes compile in parallel.
#pragma once

#include "cuda/attention.cuh"

namespace vllm {

template <typename T, int D>
void launch_attn_d(const AttnParams& p, int cg, int num_tokens, vllm_stream_t stream) {
  const int chunks = p.num_q_heads / p.num_kv_heads / cg;
  dim3 grid(num_tokens, p.num_kv_heads * chunks, p.num_splits);
  switch (cg) {
    case 8: paged_attention_kernel<T, D, 8, kAttnOnePass><<<grid, kAttnThreads, 0, stream>>>(p); break;
    case 4: paged_attention_kernel<T, D, 4, kAttnOnePass><<<grid, kAttnThreads, 0, stream>>>(p); break;
    case 2: paged_attention_kernel<T, D, 2, kAttnOnePass><<<grid, kAttnThreads, 0, stream>>>(p); break;
    default: paged_attention_kernel<T, D, 1, kAttnOnePass><<<grid, kAttnThreads, 0, stream>>>(p); break;
  }
  if (p.num_splits > 1) {
    attn_reduce_kernel<T, D><<<dim3(num_tokens, p.num_q_heads), D, 0, stream>>>(p);
  }
}

// Returns false if the head size has no kernel.
template <typename T>
bool launch_paged_attention(const AttnParams& p, int head_size, int cg, int num_tokens,
                            vllm_stream_t stream) {
  switch (head_size) {
    case 64: launch_attn_d<T, 64>(p, cg, num_tokens, stream); return true;
    case 80: launch_attn_d<T, 80>(p, cg, num_tokens, stream); return true;
    case 96: launch_attn_d<T, 96>(p, cg, num_tokens, stream); return true;
    case 128: launch_attn_d<T, 128>(p, cg, num_tokens, stream); return true;
    case 256: launch_attn_d<T, 256>(p, cg, num_tokens, stream); return true;
    default: return false;
  }
}

}  // namespace vllm
