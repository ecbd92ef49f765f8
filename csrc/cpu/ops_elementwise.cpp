// Launchers for the row-wise ops: rms_norm, fused_add_rms_norm, the gated activations,
// rotary_embedding and reshape_and_cache. Each validates its tensors, then calls the kernel
// table of the ISA chosen at run time.
#include "cpu/launch_utils.h"
#include "cpu/ops.h"

namespace vllm_cpu {
namespace {

// View x as [rows, last] keeping a row stride (copies only if the leading dims can't merge).
at::Tensor as_rows(const at::Tensor& x) {
  return x.dim() == 2 ? x : x.reshape({-1, x.size(-1)});
}

void check_norm_weight(const at::Tensor& w, const at::Tensor& x, const char* op) {
  check_cpu(w, op, "weight");
  TORCH_CHECK(w.scalar_type() == x.scalar_type(), op, ": weight dtype ", w.scalar_type(),
              " must match input dtype ", x.scalar_type());
  check_dim(w, 1, op, "weight");
  check_size(w, 0, x.size(-1), op, "weight");
  check_contiguous(w, op, "weight");
}

void act_launch(at::Tensor& out, const at::Tensor& input, Act act, const char* op) {
  const DType dt = float_dtype(input, op, "input");
  check_dtype(out, input.scalar_type(), op, "out");
  TORCH_CHECK(input.dim() >= 1 && input.size(-1) % 2 == 0, op,
              ": input's last dimension must be even (gate | up), got shape ", input.sizes());
  const int64_t d = input.size(-1) / 2;
  std::vector<int64_t> want(input.sizes().begin(), input.sizes().end());
  want.back() = d;
  TORCH_CHECK(out.sizes() == at::IntArrayRef(want), op, ": out must have shape ",
              at::IntArrayRef(want), ", got ", out.sizes());
  check_contiguous(out, op, "out");
  check_last_contiguous(input, op, "input");
  if (input.numel() == 0) return;
  const at::Tensor x = as_rows(input);
  at::Tensor y = out.view({-1, d});
  ActArgs a{y.data_ptr(), x.data_ptr(), x.size(0), d, x.stride(0), d, act};
  kernels().act_and_mul(dt, a);
}

}  // namespace

void rms_norm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double eps) {
  const char* op = "rms_norm";
  const DType dt = float_dtype(input, op, "input");
  check_dtype(out, input.scalar_type(), op, "out");
  TORCH_CHECK(out.sizes() == input.sizes(), op, ": out shape ", out.sizes(),
              " must equal input shape ", input.sizes());
  check_contiguous(out, op, "out");
  check_last_contiguous(input, op, "input");
  check_norm_weight(weight, input, op);
  if (input.numel() == 0) return;
  const at::Tensor x = as_rows(input);
  const int64_t h = x.size(1);
  RmsNormArgs a{out.data_ptr(), x.data_ptr(), nullptr, weight.data_ptr(), x.size(0), h,
                x.stride(0), h, 0, float(eps)};
  kernels().rms_norm(dt, a);
}

void fused_add_rms_norm(at::Tensor& input, at::Tensor& residual, const at::Tensor& weight,
                        double eps) {
  const char* op = "fused_add_rms_norm";
  const DType dt = float_dtype(input, op, "input");
  check_dtype(residual, input.scalar_type(), op, "residual");
  TORCH_CHECK(residual.sizes() == input.sizes(), op, ": residual shape ", residual.sizes(),
              " must equal input shape ", input.sizes());
  check_norm_weight(weight, input, op);
  check_last_contiguous(input, op, "input");
  check_last_contiguous(residual, op, "residual");
  if (input.numel() == 0) return;
  const int64_t h = input.size(-1);
  // Both are written in place, so both must be viewable as [rows, h] without a copy.
  TORCH_CHECK(input.dim() == 2 || input.is_contiguous(), op,
              ": input must be 2-D or contiguous (it is updated in place), got strides ",
              input.strides());
  TORCH_CHECK(residual.dim() == 2 || residual.is_contiguous(), op,
              ": residual must be 2-D or contiguous (it is updated in place), got strides ",
              residual.strides());
  at::Tensor x = input.view({-1, h}), r = residual.view({-1, h});
  RmsNormArgs a{nullptr, x.data_ptr(), r.data_ptr(), weight.data_ptr(), x.size(0), h,
                x.stride(0), 0, r.stride(0), float(eps)};
  kernels().fused_add_rms_norm(dt, a);
}

void silu_and_mul(at::Tensor& out, const at::Tensor& input) {
  act_launch(out, input, Act::silu, "silu_and_mul");
}
void gelu_and_mul(at::Tensor& out, const at::Tensor& input) {
  act_launch(out, input, Act::gelu, "gelu_and_mul");
}
void gelu_tanh_and_mul(at::Tensor& out, const at::Tensor& input) {
  act_launch(out, input, Act::gelu_tanh, "gelu_tanh_and_mul");
}

namespace {

// [T, H*D] or [T, H, D] -> (heads, token stride, head stride); last dim contiguous.
void rotary_layout(const at::Tensor& x, int64_t head_size, int64_t tokens, const char* arg,
                   int64_t* heads, int64_t* tok_stride, int64_t* head_stride) {
  const char* op = "rotary_embedding";
  TORCH_CHECK(x.dim() == 2 || x.dim() == 3, op, ": ", arg, " must be [T, H*D] or [T, H, D], got ",
              x.sizes());
  check_size(x, 0, tokens, op, arg);
  check_last_contiguous(x, op, arg);
  if (x.dim() == 3) {
    check_size(x, 2, head_size, op, arg);
    *heads = x.size(1);
    *head_stride = x.stride(1);
  } else {
    TORCH_CHECK(x.size(1) % head_size == 0, op, ": ", arg, ".size(1)=", x.size(1),
                " must be a multiple of head_size=", head_size);
    *heads = x.size(1) / head_size;
    *head_stride = head_size;
  }
  *tok_stride = x.stride(0);
}

}  // namespace

void rotary_embedding(const at::Tensor& positions, at::Tensor& query,
                      const std::optional<at::Tensor>& key, int64_t head_size,
                      const at::Tensor& cos_sin_cache, bool is_neox) {
  const char* op = "rotary_embedding";
  const DType dt = float_dtype(query, op, "query");
  check_dtype(positions, at::kLong, op, "positions");
  check_dtype(cos_sin_cache, query.scalar_type(), op, "cos_sin_cache");
  check_dim(cos_sin_cache, 2, op, "cos_sin_cache");
  check_last_contiguous(cos_sin_cache, op, "cos_sin_cache");
  const int64_t rot = cos_sin_cache.size(1), tokens = positions.numel();
  TORCH_CHECK(head_size > 0 && rot % 2 == 0 && rot <= head_size, op, ": cos_sin_cache.size(1)=",
              rot, " (rot_dim) must be even and <= head_size=", head_size);
  RotaryArgs a{};
  rotary_layout(query, head_size, tokens, "query", &a.hq, &a.q_tok_stride, &a.q_head_stride);
  if (key.has_value()) {
    check_dtype(*key, query.scalar_type(), op, "key");
    rotary_layout(*key, head_size, tokens, "key", &a.hk, &a.k_tok_stride, &a.k_head_stride);
  }
  if (tokens == 0) return;
  const at::Tensor pos = positions.reshape({-1}).contiguous();
  const auto [lo, hi] = int64_range(pos);
  TORCH_CHECK(lo >= 0 && hi < cos_sin_cache.size(0), op, ": positions must be in [0, ",
              cos_sin_cache.size(0), ") (cos_sin_cache rows), got range [", lo, ", ", hi, "]");
  a.positions = pos.data_ptr<int64_t>();
  a.query = query.data_ptr();
  a.key = key.has_value() ? key->data_ptr() : nullptr;
  a.cos_sin = cos_sin_cache.data_ptr();
  a.tokens = tokens;
  a.head_size = head_size;
  a.rot_dim = rot;
  a.cs_stride = cos_sin_cache.stride(0);
  a.is_neox = is_neox;
  kernels().rotary(dt, a);
}

void reshape_and_cache(const at::Tensor& key, const at::Tensor& value, at::Tensor& key_cache,
                       at::Tensor& value_cache, const at::Tensor& slot_mapping) {
  const char* op = "reshape_and_cache";
  float_dtype(key, op, "key");
  check_dim(key, 3, op, "key");
  check_dim(key_cache, 4, op, "key_cache");
  const int64_t t = key.size(0), hk = key.size(1), d = key.size(2);
  check_dtype(value, key.scalar_type(), op, "value");
  check_dtype(key_cache, key.scalar_type(), op, "key_cache");
  check_dtype(value_cache, key.scalar_type(), op, "value_cache");
  TORCH_CHECK(value.sizes() == key.sizes(), op, ": value shape ", value.sizes(),
              " must equal key shape ", key.sizes());
  check_size(key_cache, 2, hk, op, "key_cache");
  check_size(key_cache, 3, d, op, "key_cache");
  TORCH_CHECK(value_cache.sizes() == key_cache.sizes(), op, ": value_cache shape ",
              value_cache.sizes(), " must equal key_cache shape ", key_cache.sizes());
  check_contiguous(key_cache, op, "key_cache");
  check_contiguous(value_cache, op, "value_cache");
  check_last_contiguous(key, op, "key");
  check_last_contiguous(value, op, "value");
  check_dtype(slot_mapping, at::kLong, op, "slot_mapping");
  check_dim(slot_mapping, 1, op, "slot_mapping");
  check_size(slot_mapping, 0, t, op, "slot_mapping");
  if (t == 0) return;
  const at::Tensor slots = slot_mapping.contiguous();
  const int64_t num_slots = key_cache.size(0) * key_cache.size(1);
  const int64_t hi = int64_range(slots).second;
  TORCH_CHECK(hi < num_slots, op, ": slot_mapping values must be < num_blocks * block_size = ",
              num_slots, ", got ", hi);
  CacheArgs a{key.data_ptr(), value.data_ptr(), key_cache.data_ptr(), value_cache.data_ptr(),
              slots.data_ptr<int64_t>(), t, hk, d, key_cache.size(1), num_slots,
              key.stride(0), key.stride(1), value.stride(0), value.stride(1),
              int64_t(key.element_size())};
  kernels().reshape_and_cache(a);
}

}  // namespace vllm_cpu
