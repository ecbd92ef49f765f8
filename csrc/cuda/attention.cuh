// Paged attention (framework-free): causal varlen attention of new query tokens over a paged KV
// cache [num_blocks, block_size, Hk, D] (K and V separate). Grid: (query token, kv head x q-head
// chunk, context partition). A block scores one partition for CG query heads sharing one kv head
// (GQA: K/V are read once for the chunk), then either writes the output (one partition) or a
// partial result that attn_reduce_kernel merges (split-K over long contexts).
#pragma once

#include <float.h>

#include "common/portability.cuh"

namespace vllm {

constexpr int kAttnThreads = 128;
constexpr int kAttnMaxPart = 512;  // max context tokens per block
constexpr int kAttnMinPart = 32;   // least context tokens per partition when splitting
constexpr int kAttnUnroll = 4;     // two-pass: K (then V) rows in flight per lane group
constexpr int kAttnUnrollOnePass = 2;  // one-pass: K and V rows in flight per lane group
// Which body a block of CG q heads runs. H100, decode bf16 d128 256x1024 (tables in
// benchmarks/ops_cuda.md): GQA CG=4 one-pass 567 us vs two-pass 629 us; MHA two-pass 192 us.
constexpr bool attn_one_pass_for(int cg) { return cg >= 4; }
// Blocks per SM the register budget must allow. MHA two-pass capped at 64 registers (8 blocks)
// went from 75% to 94% of 3 TB/s. One-pass CG=4 (the 32/8-head case) fits 128 registers with a
// 24-byte spill (4 blocks/SM); CG=8 needs 218 and spills badly under a cap, so it gets none.
constexpr int attn_min_blocks(int cg) { return cg == 4 ? 4 : attn_one_pass_for(cg) ? 1 : 8; }

struct AttnParams {
  void* out;
  int64_t out_tok_stride, out_head_stride;
  const void* q;
  int64_t q_tok_stride, q_head_stride;
  const void* k_cache;
  const void* v_cache;
  int64_t kc_block_stride, vc_block_stride;
  const int* block_tables;
  int64_t bt_stride;
  const int* seq_lens;
  const int* query_start_loc;
  int num_seqs, num_kv_heads, num_q_heads, block_size, part_size, num_splits;
  float scale;
  float* tmp_out;  // [T, Hq, splits, D]  (splits > 1)
  float* tmp_ml;   // [T, Hq, splits, 2]  running max, sum of exp
};

// Layout of one head of D elements of T as 16-byte vectors spread over LT lanes.
template <typename T, int D>
struct HeadLayout {
  static constexpr int ELEMS = 16 / sizeof(T);
  static constexpr int VECS = D / ELEMS;
  static constexpr int LT = VECS <= 4 ? 4 : VECS <= 8 ? 8 : VECS <= 16 ? 16 : 32;
  static constexpr int VPL = (VECS + LT - 1) / LT;  // vectors per lane
  static constexpr int TPW = VLLM_WARP_SIZE / LT;   // tokens per warp step
  static constexpr int NWARPS = kAttnThreads / VLLM_WARP_SIZE;
  static_assert(D % ELEMS == 0, "head size must be a multiple of 16 bytes");
};

// Sequence owning query token t: the last s with query_start_loc[s] <= t.
VLLM_D int find_seq(const int* qsl, int num_seqs, int t) {
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (qsl[mid] <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// KV tokens query token t of sequence s sees (clamped to [0, seq_len]).
VLLM_D int visible_ctx(const AttnParams& p, int s, int t) {
  const int q_len = p.query_start_loc[s + 1] - p.query_start_loc[s];
  const int seq = p.seq_lens[s];
  return max(0, min(seq, seq - q_len + (t - p.query_start_loc[s]) + 1));
}

// Tokens per partition for a context of `ctx`. With one split it is the host's part_size. With
// Z splits the context is cut into Z * r equal partitions (r = ceil(ctx / (Z * part_size))
// rounds per block), rounded up to kAttnMinPart: a short context still spreads over many
// blocks, and a long one gives every block the same work. The host plans Z from the launch
// shape alone, so a graph captured for max_model_len stays fast on short contexts.
VLLM_D int seq_part(const AttnParams& p, int ctx) {
  if (p.num_splits == 1) return p.part_size;
  const int z = p.num_splits;
  const int rounds = max(1, (ctx + z * p.part_size - 1) / (z * p.part_size));
  const int even = (ctx + z * rounds - 1) / (z * rounds);
  return min(p.part_size, (even + kAttnMinPart - 1) / kAttnMinPart * kAttnMinPart);
}

// Sums v[g] (g < CG) over the LT lanes of a lane group with log2(CG) halving exchanges then
// plain butterflies: CG - 1 + log2(LT / CG) shuffles instead of CG * log2(LT). Returns the total
// of head `head`; the lanes with (lane & (LT / CG - 1)) == 0 hold distinct heads.
template <int CG, int LT>
VLLM_D float reduce_heads(float (&v)[CG], int l, int& head) {
  static_assert(CG <= LT, "more heads than lanes");
  head = 0;
  int c = CG;
#pragma unroll
  for (int m = LT / 2; m > 0; m >>= 1) {
    if (c > 1) {
      const int half = c / 2;
      const bool up = (l & m) != 0;
#pragma unroll
      for (int j = 0; j < half; ++j) {
        const float send = up ? v[j] : v[j + half];
        const float keep = up ? v[j + half] : v[j];
        v[j] = keep + VLLM_SHFL_XOR(send, m);
      }
      head += up ? half : 0;
      c = half;
    } else {
      v[0] += VLLM_SHFL_XOR(v[0], m);
    }
  }
  return v[0];
}

#include "cuda/attention_onepass.cuh"
#include "cuda/attention_body.cuh"

}  // namespace vllm
