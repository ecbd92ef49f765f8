// Head-size / GQA-chunk dispatch of the paged attention kernels; instantiated once per dtype
// (attention_<dtype>.cu) so the three dtypes compile in parallel.
#pragma once

#include "cuda/attention.cuh"

namespace vllm {

template <typename T, int D, int CG>
void launch_cg(dim3 grid, const AttnParams& p, vllm_stream_t stream) {
  paged_attention_kernel<T, D, CG, attn_one_pass_for(CG)><<<grid, kAttnThreads, 0, stream>>>(p);
}

template <typename T, int D>
void launch_attn_d(const AttnParams& p, int cg, int num_tokens, vllm_stream_t stream) {
  const int group = p.num_q_heads / p.num_kv_heads;
  const int chunks = (group + cg - 1) / cg;
  dim3 grid(num_tokens, p.num_kv_heads * chunks, p.num_splits);
  switch (cg) {
    case 8: launch_cg<T, D, 8>(grid, p, stream); break;
    case 4: launch_cg<T, D, 4>(grid, p, stream); break;
    case 2: launch_cg<T, D, 2>(grid, p, stream); break;
    default: launch_cg<T, D, 1>(grid, p, stream); break;
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
