// KV-cache write (framework-free): cache[slot / bs, slot % bs] = kv[t]; slot < 0 is skipped.
#pragma once

#include "common/portability.cuh"

namespace vllm {

// One block per token; a token's [Hk, D] row is contiguous in source and cache.
// row_elems = Hk * D; N elements per access.
template <typename T, int N>
__global__ void reshape_and_cache_kernel(const T* __restrict__ key, int64_t key_stride,
                                         const T* __restrict__ value, int64_t value_stride,
                                         T* __restrict__ key_cache, T* __restrict__ value_cache,
                                         int64_t kc_block_stride, int64_t vc_block_stride,
                                         const int64_t* __restrict__ slots, int block_size,
                                         int row_elems) {
  const int64_t t = blockIdx.x;
  const int64_t slot = slots[t];
  if (slot < 0) return;  // padding token
  const int64_t blk = slot / block_size;
  const int64_t off = (slot % block_size) * row_elems;
  using V = Vec<T, N>;
  const V* ks = reinterpret_cast<const V*>(key + t * key_stride);
  const V* vs = reinterpret_cast<const V*>(value + t * value_stride);
  V* kd = reinterpret_cast<V*>(key_cache + blk * kc_block_stride + off);
  V* vd = reinterpret_cast<V*>(value_cache + blk * vc_block_stride + off);
  const int nv = row_elems / N;
  for (int i = threadIdx.x; i < nv; i += blockDim.x) {
    const V a = ks[i];
    const V b = vs[i];
    kd[i] = a;
    vd[i] = b;
  }
}

}  // namespace vllm
