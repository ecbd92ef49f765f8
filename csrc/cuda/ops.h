// Host entry points of the _C ops (schemas in vllm/_custom_ops.py and torch_bindings.cpp).
#pragma once

#include <optional>

#include <ATen/ATen.h>

namespace vllm {

void rms_norm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double epsilon);
void fused_add_rms_norm(at::Tensor& input, at::Tensor& residual, const at::Tensor& weight,
                        double epsilon);
void silu_and_mul(at::Tensor& out, const at::Tensor& input);
void gelu_and_mul(at::Tensor& out, const at::Tensor& input);
void gelu_tanh_and_mul(at::Tensor& out, const at::Tensor& input);
void rotary_embedding(const at::Tensor& positions, at::Tensor& query, std::optional<at::Tensor> key,
                      int64_t head_size, const at::Tensor& cos_sin_cache, bool is_neox);
void reshape_and_cache(const at::Tensor& key, const at::Tensor& value, at::Tensor& key_cache,
                       at::Tensor& value_cache, const at::Tensor& slot_mapping);
void paged_attention(at::Tensor& out, const at::Tensor& query, const at::Tensor& key_cache,
                     const at::Tensor& value_cache, const at::Tensor& block_tables,
                     const at::Tensor& seq_lens, const at::Tensor& query_start_loc,
                     int64_t max_query_len, int64_t max_seq_len, double scale);
void gemv(at::Tensor& out, const at::Tensor& x, const at::Tensor& weight,
          const std::optional<at::Tensor>& bias, int64_t rows_per_warp);
void fused_moe(at::Tensor& out, const at::Tensor& hidden, const at::Tensor& w13, const at::Tensor& w2,
               const at::Tensor& topk_weights, const at::Tensor& topk_ids);

}  // namespace vllm
