// Launchers for paged_attention (kernel table) and fused_moe (ATen GEMMs per expert).
#include "cpu/launch_utils.h"
#include "cpu/ops.h"

namespace vllm_cpu {
namespace {

// Sequence metadata must agree with the query/cache shapes; violations would read out of bounds.
void check_attn_metadata(const at::Tensor& bt, const at::Tensor& seq_lens, const at::Tensor& qsl,
                         int64_t tokens, int64_t block_size, int64_t num_blocks) {
  const char* op = "paged_attention";
  const int64_t s = seq_lens.size(0), mb = bt.size(1);
  const int32_t* sl = seq_lens.data_ptr<int32_t>();
  const int32_t* q = qsl.data_ptr<int32_t>();
  TORCH_CHECK(q[0] == 0 && q[s] == tokens, op, ": query_start_loc must start at 0 and end at ",
              "query.size(0)=", tokens, ", got [", q[0], " .. ", q[s], "]");
  for (int64_t i = 0; i < s; ++i) {
    const int64_t qlen = q[i + 1] - q[i];
    TORCH_CHECK(qlen >= 0 && sl[i] >= qlen, op, ": sequence ", i, " has seq_len ", sl[i],
                " < its query length ", qlen, " (query_start_loc must be non-decreasing)");
    const int64_t need = (int64_t(sl[i]) + block_size - 1) / block_size;
    TORCH_CHECK(need <= mb, op, ": sequence ", i, " needs ", need,
                " blocks but block_tables has ", mb, " columns");
    const int32_t* row = bt.data_ptr<int32_t>() + i * bt.stride(0);
    for (int64_t b = 0; b < need && qlen > 0; ++b)
      TORCH_CHECK(row[b] >= 0 && row[b] < num_blocks, op, ": block_tables[", i, ", ", b, "]=",
                  row[b], " is outside [0, ", num_blocks, ")");
  }
}

}  // namespace

void paged_attention(at::Tensor& out, const at::Tensor& query, const at::Tensor& key_cache,
                     const at::Tensor& value_cache, const at::Tensor& block_tables,
                     const at::Tensor& seq_lens, const at::Tensor& query_start_loc,
                     int64_t max_query_len, int64_t max_seq_len, double scale) {
  const char* op = "paged_attention";
  const DType dt = float_dtype(query, op, "query");
  check_dim(query, 3, op, "query");
  check_dim(key_cache, 4, op, "key_cache");
  check_dtype(out, query.scalar_type(), op, "out");
  check_dtype(key_cache, query.scalar_type(), op, "key_cache");
  check_dtype(value_cache, query.scalar_type(), op, "value_cache");
  TORCH_CHECK(out.sizes() == query.sizes(), op, ": out shape ", out.sizes(),
              " must equal query shape ", query.sizes());
  TORCH_CHECK(value_cache.sizes() == key_cache.sizes(), op, ": value_cache shape ",
              value_cache.sizes(), " must equal key_cache shape ", key_cache.sizes());
  const int64_t t = query.size(0), hq = query.size(1), d = query.size(2);
  const int64_t hk = key_cache.size(2), bs = key_cache.size(1);
  check_size(key_cache, 3, d, op, "key_cache");
  TORCH_CHECK(hk > 0 && hq % hk == 0, op, ": query heads (", hq,
              ") must be a multiple of key_cache heads (", hk, ")");
  check_contiguous(key_cache, op, "key_cache");
  check_contiguous(value_cache, op, "value_cache");
  check_last_contiguous(query, op, "query");
  check_last_contiguous(out, op, "out");
  check_dtype(block_tables, at::kInt, op, "block_tables");
  check_dtype(seq_lens, at::kInt, op, "seq_lens");
  check_dtype(query_start_loc, at::kInt, op, "query_start_loc");
  check_dim(block_tables, 2, op, "block_tables");
  check_dim(seq_lens, 1, op, "seq_lens");
  const int64_t s = seq_lens.size(0);
  check_size(block_tables, 0, s, op, "block_tables");
  check_size(query_start_loc, 0, s + 1, op, "query_start_loc");
  check_last_contiguous(block_tables, op, "block_tables");
  check_contiguous(seq_lens, op, "seq_lens");
  check_contiguous(query_start_loc, op, "query_start_loc");
  if (t == 0 || s == 0) return;
  check_attn_metadata(block_tables, seq_lens, query_start_loc, t, bs, key_cache.size(0));
  (void)max_seq_len;
  AttnArgs a{out.data_ptr(), query.data_ptr(), key_cache.data_ptr(), value_cache.data_ptr(),
             block_tables.data_ptr<int32_t>(), seq_lens.data_ptr<int32_t>(),
             query_start_loc.data_ptr<int32_t>(), s, hq, hk, d, bs, block_tables.size(1),
             block_tables.stride(0), query.stride(0), query.stride(1), out.stride(0),
             out.stride(1), max_query_len, float(scale)};
  kernels().paged_attention(dt, a);
}

namespace {

void check_moe(const at::Tensor& out, const at::Tensor& hidden, const at::Tensor& w13,
               const at::Tensor& w2, const at::Tensor& topk_weights, const at::Tensor& topk_ids) {
  const char* op = "fused_moe";
  float_dtype(hidden, op, "hidden");
  check_dim(hidden, 2, op, "hidden");
  check_dim(w13, 3, op, "w13");
  check_dim(w2, 3, op, "w2");
  check_dtype(out, hidden.scalar_type(), op, "out");
  check_dtype(w13, hidden.scalar_type(), op, "w13");
  check_dtype(w2, hidden.scalar_type(), op, "w2");
  TORCH_CHECK(out.sizes() == hidden.sizes(), op, ": out shape ", out.sizes(),
              " must equal hidden shape ", hidden.sizes());
  const int64_t e = w13.size(0), h = hidden.size(1), inter = w13.size(1) / 2;
  TORCH_CHECK(w13.size(1) % 2 == 0, op, ": w13.size(1) must be even (gate | up), got ", w13.size(1));
  check_size(w13, 2, h, op, "w13");
  check_size(w2, 0, e, op, "w2");
  check_size(w2, 1, h, op, "w2");
  check_size(w2, 2, inter, op, "w2");
  check_dim(topk_weights, 2, op, "topk_weights");
  check_dim(topk_ids, 2, op, "topk_ids");
  float_dtype(topk_weights, op, "topk_weights");
  check_cpu(topk_ids, op, "topk_ids");
  TORCH_CHECK(topk_ids.scalar_type() == at::kInt || topk_ids.scalar_type() == at::kLong, op,
              ": topk_ids must be int32 or int64, got ", topk_ids.scalar_type());
  TORCH_CHECK(topk_ids.sizes() == topk_weights.sizes(), op, ": topk_ids shape ", topk_ids.sizes(),
              " must equal topk_weights shape ", topk_weights.sizes());
  check_size(topk_ids, 0, hidden.size(0), op, "topk_ids");
}

}  // namespace

// Tokens are grouped by expert; each expert runs two GEMMs on its gathered rows (ATen, which
// parallelizes them), the gated activation runs through our kernel, and results are
// scatter-added in fp32 with their routing weights.
void fused_moe(at::Tensor& out, const at::Tensor& hidden, const at::Tensor& w13,
               const at::Tensor& w2, const at::Tensor& topk_weights, const at::Tensor& topk_ids) {
  check_moe(out, hidden, w13, w2, topk_weights, topk_ids);
  const char* op = "fused_moe";
  const int64_t e = w13.size(0), k = topk_ids.size(1), inter = w13.size(1) / 2;
  if (hidden.numel() == 0) return;
  const at::Tensor ids = topk_ids.reshape({-1}).to(at::kLong);  // [T*K]
  const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < e, op, ": topk_ids must be in [0, ", e, "), got range [", lo, ", ",
              hi, "]");
  const at::Tensor order = ids.argsort(/*stable=*/true);
  const at::Tensor tokens = order.div(k, "floor");                      // [T*K]
  const at::Tensor weights = topk_weights.reshape({-1}).index_select(0, order).to(at::kFloat);
  const at::Tensor counts = ids.bincount({}, e).cpu();
  const int64_t* cnt = counts.data_ptr<int64_t>();
  at::Tensor acc = at::zeros({hidden.size(0), hidden.size(1)}, hidden.options().dtype(at::kFloat));
  const DType dt = float_dtype(hidden, op, "hidden");
  int64_t start = 0;
  for (int64_t x = 0; x < e; ++x) {
    const int64_t n = cnt[x];
    if (n == 0) continue;
    const at::Tensor rows = tokens.slice(0, start, start + n);
    const at::Tensor gu = at::mm(hidden.index_select(0, rows), w13[x].t());  // [n, 2I]
    at::Tensor act = at::empty({n, inter}, hidden.options());
    ActArgs aa{act.data_ptr(), gu.data_ptr(), n, inter, gu.stride(0), inter, Act::silu};
    kernels().act_and_mul(dt, aa);
    const at::Tensor y = at::mm(act, w2[x].t()).to(at::kFloat);           // [n, H]
    acc.index_add_(0, rows, y.mul_(weights.slice(0, start, start + n).unsqueeze(1)));
    start += n;
  }
  out.copy_(acc);
}

}  // namespace vllm_cpu
