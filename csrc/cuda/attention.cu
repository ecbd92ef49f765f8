// Launcher for paged_attention: checks, int32 metadata, partition (split-K) choice, dispatch.
#include "common/torch_utils.h"
#include "cuda/attention.cuh"
#include "cuda/ops.h"

namespace vllm {

template <typename T>
bool launch_paged_attention(const AttnParams& p, int head_size, int cg, int num_tokens,
                            vllm_stream_t stream);

namespace {

void check_heads(const at::Tensor& t, const char* name) {
  check_cuda(t, name);
  TORCH_CHECK_VALUE(t.dim() == 3, name, " must be [T, H, D], got ", t.sizes());
  check_last_contig(t, name);
}

at::Tensor as_int(const at::Tensor& t, const char* name) {
  check_cuda(t, name);
  TORCH_CHECK_VALUE(t.scalar_type() == at::kInt || t.scalar_type() == at::kLong, name,
              " must be int32 or int64, got ", t.scalar_type());
  return t.scalar_type() == at::kInt && t.stride(-1) == 1 ? t : t.to(at::kInt).contiguous();
}

// Q heads per block (a power of two <= 8): all of a group of up to 8 (a group of 7 or 5 pads
// to 8 and the missing heads cost only arithmetic; K/V are read once), else the largest power
// of two >= 4 dividing the group, else 8-head chunks with a partial last one.
int head_chunk(int group) {
  if (group <= 8) {
    int cg = 1;
    while (cg < group) cg *= 2;
    return cg;
  }
  for (int cg = 8; cg >= 4; cg /= 2) {
    if (group % cg == 0) return cg;
  }
  return 8;
}

// Context tokens per block: the largest of 512/256/128 that still gives >= 2 blocks per SM.
int part_size(int64_t base_blocks, int max_seq_len, int device) {
  const int64_t target = 2LL * std::max(1, device_sm_count(device));
  for (int part : {kAttnMaxPart, 256}) {
    if (base_blocks * ceil_div(max_seq_len, part) >= target) return part;
  }
  return 128;
}

}  // namespace

void paged_attention(at::Tensor& out, const at::Tensor& query, const at::Tensor& key_cache,
                     const at::Tensor& value_cache, const at::Tensor& block_tables,
                     const at::Tensor& seq_lens, const at::Tensor& query_start_loc,
                     int64_t max_query_len, int64_t max_seq_len, double scale) {
  check_heads(query, "query");
  check_heads(out, "out");
  TORCH_CHECK_VALUE(out.sizes() == query.sizes(), "out ", out.sizes(), " != query ", query.sizes());
  check_same_dtype(out, query, "out", "query");
  for (const at::Tensor* c : {&key_cache, &value_cache}) {
    const char* name = c == &key_cache ? "key_cache" : "value_cache";
    check_cuda(*c, name);
    TORCH_CHECK_VALUE(c->dim() == 4, name, " must be [num_blocks, block_size, Hk, D], got ", c->sizes());
    const bool dense = c->stride(3) == 1 && c->stride(2) == c->size(3) &&
                       c->stride(1) == c->size(2) * c->size(3);
    TORCH_CHECK_VALUE(dense, name, ": each block must be contiguous, strides ", c->strides());
    check_same_dtype(*c, query, name, "query");
  }
  TORCH_CHECK_VALUE(key_cache.sizes() == value_cache.sizes(), "key_cache and value_cache shapes differ");
  const int T = static_cast<int>(query.size(0)), Hq = static_cast<int>(query.size(1));
  const int D = static_cast<int>(query.size(2)), Hk = static_cast<int>(key_cache.size(2));
  TORCH_CHECK_VALUE(key_cache.size(3) == D, "key_cache head size ", key_cache.size(3),
                    " != query head size ", D);
  TORCH_CHECK_VALUE(Hk > 0 && Hq % Hk == 0, "query heads ", Hq, " must be a multiple of kv heads ", Hk);
  const at::Tensor bt = as_int(block_tables, "block_tables");
  const at::Tensor sl = as_int(seq_lens, "seq_lens").contiguous();
  const at::Tensor qsl = as_int(query_start_loc, "query_start_loc").contiguous();
  TORCH_CHECK_VALUE(bt.dim() == 2, "block_tables must be [num_seqs, max_blocks], got ", bt.sizes());
  const int S = static_cast<int>(sl.numel());
  TORCH_CHECK_VALUE(qsl.numel() == S + 1, "query_start_loc has ", qsl.numel(),
                    " entries; expected num_seqs + 1 = ", S + 1);
  TORCH_CHECK_VALUE(bt.size(0) >= S, "block_tables has ", bt.size(0), " rows for ", S, " sequences");
  TORCH_CHECK_VALUE(max_query_len >= 0 && max_seq_len >= 0, "max_query_len/max_seq_len must be >= 0");
  if (T == 0 || S == 0) return;
  AttnParams p{};
  p.out = out.data_ptr();
  p.out_tok_stride = out.stride(0);
  p.out_head_stride = out.stride(1);
  p.q = query.data_ptr();
  p.q_tok_stride = query.stride(0);
  p.q_head_stride = query.stride(1);
  p.k_cache = key_cache.data_ptr();
  p.v_cache = value_cache.data_ptr();
  p.kc_block_stride = key_cache.stride(0);
  p.vc_block_stride = value_cache.stride(0);
  p.block_tables = bt.data_ptr<int>();
  p.bt_stride = bt.stride(0);
  p.seq_lens = sl.data_ptr<int>();
  p.query_start_loc = qsl.data_ptr<int>();
  p.num_seqs = S;
  p.num_kv_heads = Hk;
  p.num_q_heads = Hq;
  p.block_size = static_cast<int>(key_cache.size(1));
  p.scale = static_cast<float>(scale);
  const int cg = head_chunk(Hq / Hk);
  const int seq = static_cast<int>(std::max<int64_t>(1, max_seq_len));
  const int64_t base = static_cast<int64_t>(T) * Hk * ((Hq / Hk + cg - 1) / cg);
  p.part_size = part_size(base, std::min(seq, 8192), query.get_device());
  // Blocks stride over partitions, so any split count is correct and max_seq_len only plans the
  // launch; the cap keeps a large hint (a graph captured for max_model_len) from launching
  // thousands of empty blocks.
  const int64_t sms = std::max(1, device_sm_count(query.get_device()));
  const int64_t cap = std::max<int64_t>(2, (4 * sms + base - 1) / base);
  // A launch too small to fill the GPU splits as finely as kAttnMinPart (seq_part shrinks the
  // partitions to match the real context); a large one splits only past part_size.
  const int finest = base >= 2 * sms ? p.part_size : kAttnMinPart;
  p.num_splits = static_cast<int>(std::min<int64_t>(ceil_div(seq, finest), cap));
  at::Tensor tmp_out, tmp_ml;
  if (p.num_splits > 1) {
    auto fopts = query.options().dtype(at::kFloat);
    tmp_out = at::empty({T, Hq, p.num_splits, D}, fopts);
    tmp_ml = at::empty({T, Hq, p.num_splits, 2}, fopts);
    p.tmp_out = tmp_out.data_ptr<float>();
    p.tmp_ml = tmp_ml.data_ptr<float>();
  }
  DeviceGuard guard(query.device());
  auto stream = current_stream();
  VLLM_DISPATCH_FLOAT(query.scalar_type(), "paged_attention", [&] {
    TORCH_CHECK_VALUE(launch_paged_attention<scalar_t>(p, D, cg, T, stream), "paged_attention: head size ",
                D, " is not supported (64, 80, 96, 128, 256)");
  });
  VLLM_LAUNCH_CHECK();
}

}  // namespace vllm
