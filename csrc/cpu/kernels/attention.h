// Causal varlen paged attention (prefill chunks and decodes mixed), flash-attention style with
// an fp32 online softmax. One work item = (sequence, kv heads, tile of query tokens); its rows
// are the tile's tokens x the GQA groups of its kv heads, so every K/V block is read once per
// item and reused by all rows. Items with few rows per kv head (decodes) take
// attention_decode.h, long tiles attention_prefill.h (or, with bf16 dot products, the
// attention_decode.h path too, in ~32-row tiles).
#pragma once

#ifdef _OPENMP
#include <omp.h>
#endif
#include "cpu/kernels/attention_decode.h"
#include "cpu/kernels/attention_prefill.h"
#include "cpu/kernels/parallel.h"

namespace vllm_cpu {
namespace {

struct AttnPlan {
  int64_t qt;            // query tokens per long tile (~64 rows per item)
  int64_t few_heads;     // kv heads per few-rows item
};

// Few-rows items take several kv heads when there are enough sequences to keep every thread
// busy: a block's heads are then read as one contiguous run instead of strided pieces.
// tile_rows: rows (tokens x GQA group) per long-query tile.
inline AttnPlan attn_plan(const AttnArgs& a, int64_t tile_rows) {
  const int64_t G = a.hq / a.hk;
  AttnPlan p{tile_rows / G > 1 ? tile_rows / G : 1, 1};
  if (p.qt > a.max_query_len && a.max_query_len > 0) p.qt = a.max_query_len;
  int64_t threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  int64_t few = 0;
  for (int64_t s = 0; s < a.num_seqs; ++s)
    few += (a.query_start_loc[s + 1] - a.query_start_loc[s]) * G <= kFewRowsMax;
  const int64_t want = 4 * threads;  // items wanted for dynamic load balance
  const int64_t groups = few >= want ? 1 : (want + few - 1) / (few > 0 ? few : 1);
  p.few_heads = (a.hk + groups - 1) / (groups < a.hk ? groups : a.hk);
  return p;
}

template <class V, class T>
void paged_attention_impl(const AttnArgs& a) {
  const int64_t G = a.hq / a.hk;
  // With vdpbf16ps (bf16 cache, head dim a multiple of 32) the chunked few-rows path, which
  // scores raw bf16 rows and runs P @ V on bf16 pairs, is also the faster one for prefill
  // tiles (1.5-1.6x on 16 x 128-token prompts), with ~32-row tiles (less causal waste than 64).
  const bool bf16_tiles = use_bf16_dot<V, T>() && a.d % 32 == 0;
  const AttnPlan plan = attn_plan(a, bf16_tiles ? kFewRowsMax : 64);
  int64_t n_items = 0, macs = 0;
  for (int64_t s = 0; s < a.num_seqs; ++s) {
    const int64_t qlen = a.query_start_loc[s + 1] - a.query_start_loc[s];
    if (qlen == 0) continue;
    macs += 2 * qlen * a.hq * a.seq_lens[s] * a.d;  // upper bound (causal halves prefill)
    n_items += qlen * G <= kFewRowsMax ? (a.hk + plan.few_heads - 1) / plan.few_heads
                                       : (qlen + plan.qt - 1) / plan.qt * a.hk;
  }
  AttnItem* items = static_cast<AttnItem*>(std::malloc(sizeof(AttnItem) * (n_items + 1)));
  int64_t w = 0;
  for (int64_t s = 0; s < a.num_seqs; ++s) {
    const int64_t qlen = a.query_start_loc[s + 1] - a.query_start_loc[s];
    if (qlen > 0 && qlen * G <= kFewRowsMax) {  // one tile: the whole query
      for (int64_t h = 0; h < a.hk; h += plan.few_heads)
        items[w++] = AttnItem{s, h, a.hk - h < plan.few_heads ? a.hk - h : plan.few_heads, 0,
                              qlen};
      continue;
    }
    for (int64_t j = 0; j < qlen; j += plan.qt)
      for (int64_t h = 0; h < a.hk; ++h)
        items[w++] = AttnItem{s, h, 1, j, qlen - j < plan.qt ? qlen - j : plan.qt};
  }
  const bool par = n_items > 1 && macs >= kParallelAttnMacs;
#pragma omp parallel for schedule(dynamic, 1) if (par)
  for (int64_t i = 0; i < n_items; ++i) {
    if (bf16_tiles || items[i].n_heads > 1 || items[i].tile_len * G <= kFewRowsMax) {
      attend_few_rows<V, T>(a, items[i]);
    } else {
      attend_tile<V, T>(a, items[i]);
    }
  }
  std::free(items);
}

}  // namespace
}  // namespace vllm_cpu
