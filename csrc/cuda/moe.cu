// fused_moe: tokens grouped by expert, one cuBLAS GEMM pair per expert (through ATen), our
// silu_and_mul in between, weighted scatter-add back. Correct first; not graph-capturable
// (expert counts are read on the host).
#include "common/torch_utils.h"
#include "cuda/ops.h"

namespace vllm {

void fused_moe(at::Tensor& out, const at::Tensor& hidden, const at::Tensor& w13, const at::Tensor& w2,
               const at::Tensor& topk_weights, const at::Tensor& topk_ids) {
  check_cuda(out, "out");
  check_cuda(hidden, "hidden");
  check_cuda(w13, "w13");
  check_cuda(w2, "w2");
  check_cuda(topk_weights, "topk_weights");
  check_cuda(topk_ids, "topk_ids");
  TORCH_CHECK_VALUE(hidden.dim() == 2, "hidden must be [T, H], got ", hidden.sizes());
  TORCH_CHECK_VALUE(out.sizes() == hidden.sizes(), "out ", out.sizes(), " != hidden ", hidden.sizes());
  check_same_dtype(out, hidden, "out", "hidden");
  check_same_dtype(w13, hidden, "w13", "hidden");
  check_same_dtype(w2, hidden, "w2", "hidden");
  const int64_t T = hidden.size(0), H = hidden.size(1);
  TORCH_CHECK_VALUE(w13.dim() == 3 && w13.size(2) == H && w13.size(1) % 2 == 0, "w13 must be [E, 2I, H=", H,
              "], got ", w13.sizes());
  const int64_t E = w13.size(0), I = w13.size(1) / 2;
  TORCH_CHECK_VALUE(w2.dim() == 3 && w2.size(0) == E && w2.size(1) == H && w2.size(2) == I,
                    "w2 must be [E=", E, ", H=", H, ", I=", I, "], got ", w2.sizes());
  TORCH_CHECK_VALUE(topk_ids.dim() == 2 && topk_ids.size(0) == T, "topk_ids must be [T=", T, ", K], got ",
              topk_ids.sizes());
  TORCH_CHECK_VALUE(topk_weights.sizes() == topk_ids.sizes(), "topk_weights ", topk_weights.sizes(),
              " != topk_ids ", topk_ids.sizes());
  TORCH_CHECK_VALUE(!at::isFloatingType(topk_ids.scalar_type()), "topk_ids must be an integer tensor");
  if (T == 0) return;
  DeviceGuard guard(hidden.device());
  const int64_t K = topk_ids.size(1);
  const at::Tensor ids = topk_ids.reshape({-1}).to(at::kLong);                 // [T*K]
  TORCH_CHECK_VALUE(ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < E,
              "topk_ids must lie in [0, num_experts=", E, ")");
  const at::Tensor order = std::get<1>(ids.sort(/*stable=*/true, 0, false));   // pairs by expert
  const at::Tensor tok = order.floor_divide(K);                                // [T*K] token index
  const at::Tensor wts = topk_weights.reshape({-1}).index_select(0, order).to(at::kFloat);
  const at::Tensor counts = at::bincount(ids, {}, E).cpu();
  const int64_t* cnt = counts.data_ptr<int64_t>();
  at::Tensor acc = at::zeros({T, H}, hidden.options().dtype(at::kFloat));
  int64_t off = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t c = cnt[e];
    if (c == 0) continue;
    const at::Tensor idx = tok.narrow(0, off, c);
    const at::Tensor x = hidden.index_select(0, idx);                          // [c, H]
    const at::Tensor gu = at::matmul(x, w13[e].t());                           // [c, 2I]
    at::Tensor act = at::empty({c, I}, hidden.options());
    silu_and_mul(act, gu);
    const at::Tensor y = at::matmul(act, w2[e].t()).to(at::kFloat);            // [c, H]
    acc.index_add_(0, idx, y * wts.narrow(0, off, c).unsqueeze(1));
    off += c;
  }
  out.copy_(acc);
}

}  // namespace vllm
