// Rotary position embedding (framework-free), in place on query and key.
// cos_sin row for a position: [cos(0..rot/2) | sin(0..rot/2)].
#pragma once

#include "common/portability.cuh"

namespace vllm {

// Rotates the pair (x[i1], x[i2]) of one head by (cos, sin).
template <typename T>
VLLM_D void rotate_pair(T* x, int i1, int i2, float c, float s) {
  const float a = to_float(x[i1]);
  const float b = to_float(x[i2]);
  x[i1] = from_float<T>(a * c - b * s);
  x[i2] = from_float<T>(b * c + a * s);
}

// One block per token. neox pairs (i, i + rot/2); gptj pairs (2i, 2i + 1).
template <typename T, typename C, bool NEOX>
__global__ void rotary_kernel(const int64_t* __restrict__ positions, T* __restrict__ q,
                              int64_t q_tok_stride, int64_t q_head_stride, int nq,
                              T* __restrict__ k, int64_t k_tok_stride, int64_t k_head_stride, int nk,
                              const C* __restrict__ cos_sin, int rot_dim) {
  const int t = blockIdx.x;
  const int half = rot_dim / 2;
  const C* cs = cos_sin + positions[t] * rot_dim;
  const int nq_pairs = nq * half;
  const int total = (nq + nk) * half;
  for (int p = threadIdx.x; p < total; p += blockDim.x) {
    const bool is_q = p < nq_pairs;
    const int pp = is_q ? p : p - nq_pairs;
    const int head = pp / half;
    const int i = pp % half;
    T* x = is_q ? q + t * q_tok_stride + head * q_head_stride
                : k + t * k_tok_stride + head * k_head_stride;
    const float c = to_float(cs[i]);
    const float s = to_float(cs[half + i]);
    if (NEOX) {
      rotate_pair(x, i, i + half, c, s);
    } else {
      rotate_pair(x, 2 * i, 2 * i + 1, c, s);
    }
  }
}

}  // namespace vllm
