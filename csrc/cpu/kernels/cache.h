// reshape_and_cache: copy each token's K/V heads into its paged-cache slot (slot < 0: skip).
// A pure copy, so it is dtype-agnostic (elem_size bytes per element).
#pragma once

#include <cstring>
#include "cpu/kernels/api.h"
#include "cpu/kernels/parallel.h"

namespace vllm_cpu {
namespace {

inline void copy_heads(char* dst, const char* src, int64_t heads, int64_t head_stride_bytes,
                       int64_t head_bytes) {
  if (head_stride_bytes == head_bytes) {
    std::memcpy(dst, src, heads * head_bytes);
    return;
  }
  for (int64_t h = 0; h < heads; ++h)
    std::memcpy(dst + h * head_bytes, src + h * head_stride_bytes, head_bytes);
}

inline void reshape_and_cache_impl(const CacheArgs& a) {
  const int64_t es = a.elem_size, head_bytes = a.d * es, slot_bytes = a.hk * head_bytes;
  const bool par = 2 * a.tokens * slot_bytes >= kParallelCopyBytes;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t t = 0; t < a.tokens; ++t) {
    const int64_t slot = a.slots[t];
    if (slot < 0 || slot >= a.num_slots) continue;  // padding / out of range (checked upstream)
    const char* k = static_cast<const char*>(a.key) + t * a.k_tok_stride * es;
    const char* v = static_cast<const char*>(a.value) + t * a.v_tok_stride * es;
    copy_heads(static_cast<char*>(a.key_cache) + slot * slot_bytes, k, a.hk, a.k_head_stride * es,
               head_bytes);
    copy_heads(static_cast<char*>(a.value_cache) + slot * slot_bytes, v, a.hk,
               a.v_head_stride * es, head_bytes);
  }
}

}  // namespace
}  // namespace vllm_cpu
