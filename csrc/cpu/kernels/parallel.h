// When a kernel opens an OpenMP parallel region. Starting one costs a few microseconds with
// spinning worker threads and tens of microseconds when they sleep or share their cores with
// other work (a decode step's small ops run between GEMMs); below ~20 us of single-thread work
// one thread is faster. Thresholds are in each kernel's own unit of work, from its measured
// single-thread cost (AVX-512, bf16): ~0.2 ns per element for norms and rotary, ~0.6 ns per
// element for the gated activations (exp/erf).
#pragma once

#include <cstdint>

namespace vllm_cpu {

constexpr int64_t kParallelNormElems = 1 << 17;    // rms_norm, fused_add_rms_norm: rows * hidden
constexpr int64_t kParallelActElems = 1 << 15;     // gated activations: rows * d (outputs)
constexpr int64_t kParallelRotaryElems = 1 << 17;  // rotary: tokens * heads * rot_dim
constexpr int64_t kParallelCopyBytes = 1 << 18;    // reshape_and_cache: bytes copied
// paged attention: query rows x keys x head dim (multiply-adds for QK plus PV)
constexpr int64_t kParallelAttnMacs = 1 << 21;

}  // namespace vllm_cpu
