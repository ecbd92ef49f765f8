// Launcher for rotary_embedding (neox and gptj, partial rotary dims).
#include "common/torch_utils.h"
#include "cuda/ops.h"
#include "cuda/rotary.cuh"

namespace vllm {
namespace {

struct HeadView {
  int64_t tok_stride = 0, head_stride = 0;
  int heads = 0;
};

// query/key: [T, H*D] or [T, H, D]; each head's D values contiguous.
HeadView head_view(const at::Tensor& t, int64_t num_tokens, int64_t head_size, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == 2 || t.dim() == 3, name, " must be [T, H*D] or [T, H, D], got ", t.sizes());
  TORCH_CHECK_VALUE(t.size(0) == num_tokens, name, ": ", t.size(0), " tokens but positions has ", num_tokens);
  check_last_contig(t, name);
  HeadView v;
  v.tok_stride = t.stride(0);
  if (t.dim() == 3) {
    TORCH_CHECK_VALUE(t.size(2) == head_size, name, ": head dim ", t.size(2), " != head_size ", head_size);
    v.heads = static_cast<int>(t.size(1));
    v.head_stride = t.stride(1);
  } else {
    TORCH_CHECK_VALUE(t.size(1) % head_size == 0, name, ": last dim ", t.size(1),
                " is not a multiple of head_size ", head_size);
    v.heads = static_cast<int>(t.size(1) / head_size);
    v.head_stride = head_size;
  }
  return v;
}

}  // namespace

void rotary_embedding(const at::Tensor& positions, at::Tensor& query, std::optional<at::Tensor> key,
                      int64_t head_size, const at::Tensor& cos_sin_cache, bool is_neox) {
  check_cuda(query, "query");
  check_cuda(positions, "positions");
  check_cuda(cos_sin_cache, "cos_sin_cache");
  TORCH_CHECK_VALUE(cos_sin_cache.dim() == 2 && cos_sin_cache.is_contiguous(),
              "cos_sin_cache must be a contiguous [max_position, rot_dim] tensor");
  const int rot_dim = static_cast<int>(cos_sin_cache.size(1));
  TORCH_CHECK_VALUE(rot_dim % 2 == 0 && rot_dim <= head_size, "cos_sin_cache rot_dim ", rot_dim,
              " must be even and <= head_size ", head_size);
  TORCH_CHECK_VALUE(positions.scalar_type() == at::kLong || positions.scalar_type() == at::kInt,
              "positions must be int64 or int32, got ", positions.scalar_type());
  const at::Tensor pos = positions.reshape({-1}).to(at::kLong).contiguous();
  const int64_t T = pos.size(0);
  HeadView qv = head_view(query, T, head_size, "query");
  HeadView kv;
  if (key.has_value()) {
    check_cuda(*key, "key");
    check_same_dtype(*key, query, "key", "query");
    kv = head_view(*key, T, head_size, "key");
  }
  if (T == 0) return;
  const bool cache_is_float = cos_sin_cache.scalar_type() == at::kFloat;
  TORCH_CHECK_VALUE(cache_is_float || cos_sin_cache.scalar_type() == query.scalar_type(),
              "cos_sin_cache dtype ", cos_sin_cache.scalar_type(), " must be float32 or the query dtype");
  DeviceGuard guard(query.device());
  auto stream = current_stream();
  const int pairs = (qv.heads + kv.heads) * rot_dim / 2;
  const int threads = std::max(32, std::min(512, (pairs + 31) / 32 * 32));
  VLLM_DISPATCH_FLOAT(query.scalar_type(), "rotary_embedding", [&] {
    scalar_t* kp = key.has_value() ? ptr<scalar_t>(*key) : nullptr;
    auto go = [&](auto cache_tag, auto neox_tag) {
      using C = decltype(cache_tag);
      constexpr bool NEOX = decltype(neox_tag)::value;
      rotary_kernel<scalar_t, C, NEOX><<<T, threads, 0, stream>>>(
          pos.data_ptr<int64_t>(), ptr<scalar_t>(query), qv.tok_stride, qv.head_stride, qv.heads, kp,
          kv.tok_stride, kv.head_stride, kv.heads, ptr<C>(cos_sin_cache), rot_dim);
    };
    if (cache_is_float) {
      is_neox ? go(float{}, std::true_type{}) : go(float{}, std::false_type{});
    } else {
      is_neox ? go(scalar_t{}, std::true_type{}) : go(scalar_t{}, std::false_type{});
    }
  });
  VLLM_LAUNCH_CHECK();
}

}  // namespace vllm
