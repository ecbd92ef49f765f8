// Hook for a bf16 dot-product scorer in the decode attention path. The primary template says
// "not available"; ISA translation units that can do better (AVX512-BF16's vdpbf16ps, which
// multiplies bf16 pairs exactly and accumulates in fp32) specialize it for their vector type.
#pragma once

#include <cstdint>
#include "cpu/common/dtypes.h"

namespace vllm_cpu {
namespace {

template <class V>
struct Bf16Dot {
  static constexpr bool kAvailable = false;
  // s[r][t] = scale * (q[r] . k[t]) for R rows q (bf16, stride d), keys t < n (bf16, stride ks
  // elements); writes whole vectors of V::W keys (past n: garbage the caller masks).
  static void score(const bf16*, int64_t, int64_t, const bf16*, int64_t, int64_t, float*,
                    int64_t, float) {}
  // acc[r] += sum_{t<n} p[r][t] * v[t] for R rows (acc stride dp, in the scorer's own lane
  // order until unpermute), v bf16 rows (stride vs elements).
  static void pv(float*, int64_t, int64_t, const float*, int64_t, const bf16*, int64_t, int64_t,
                 int64_t) {}
  static void unpermute(float*, int64_t, int64_t, int64_t) {}
};

}  // namespace
}  // namespace vllm_cpu
