// Launcher for reshape_and_cache (paged KV write).
#include "common/torch_utils.h"
#include "cuda/cache.cuh"
#include "cuda/ops.h"

namespace vllm {
namespace {

void check_kv(const at::Tensor& t, const char* name) {
  check_cuda(t, name);
  TORCH_CHECK_VALUE(t.dim() == 3, name, " must be [T, Hk, D], got ", t.sizes());
  TORCH_CHECK_VALUE(t.stride(2) == 1 && t.stride(1) == t.size(2), name,
              ": each token's [Hk, D] row must be contiguous, strides ", t.strides());
}

void check_cache(const at::Tensor& c, const at::Tensor& kv, const char* name) {
  check_cuda(c, name);
  TORCH_CHECK_VALUE(c.dim() == 4, name, " must be [num_blocks, block_size, Hk, D], got ", c.sizes());
  TORCH_CHECK_VALUE(c.size(2) == kv.size(1) && c.size(3) == kv.size(2), name, " heads/head size ",
              c.sizes(), " do not match the new tokens ", kv.sizes());
  TORCH_CHECK_VALUE(c.stride(3) == 1 && c.stride(2) == c.size(3) && c.stride(1) == c.size(2) * c.size(3),
              name, ": each block must be contiguous, strides ", c.strides());
}

}  // namespace

void reshape_and_cache(const at::Tensor& key, const at::Tensor& value, at::Tensor& key_cache,
                       at::Tensor& value_cache, const at::Tensor& slot_mapping) {
  check_kv(key, "key");
  check_kv(value, "value");
  TORCH_CHECK_VALUE(key.sizes() == value.sizes(), "key ", key.sizes(), " and value ", value.sizes(),
              " must have the same shape");
  check_cache(key_cache, key, "key_cache");
  check_cache(value_cache, key, "value_cache");
  TORCH_CHECK_VALUE(key_cache.sizes() == value_cache.sizes(), "key_cache and value_cache shapes differ");
  check_same_dtype(key, value, "key", "value");
  check_same_dtype(key_cache, key, "key_cache", "key");
  check_same_dtype(value_cache, key, "value_cache", "key");
  check_cuda(slot_mapping, "slot_mapping");
  TORCH_CHECK_VALUE(slot_mapping.scalar_type() == at::kLong || slot_mapping.scalar_type() == at::kInt,
              "slot_mapping must be int64 or int32, got ", slot_mapping.scalar_type());
  const int64_t T = key.size(0);
  TORCH_CHECK_VALUE(slot_mapping.numel() >= T, "slot_mapping has ", slot_mapping.numel(),
              " entries for ", T, " tokens");
  if (T == 0) return;
  const at::Tensor slots = slot_mapping.reshape({-1}).to(at::kLong).contiguous();
  const int row = static_cast<int>(key.size(1) * key.size(2));
  const int block_size = static_cast<int>(key_cache.size(1));
  DeviceGuard guard(key.device());
  auto stream = current_stream();
  VLLM_DISPATCH_FLOAT(key.scalar_type(), "reshape_and_cache", [&] {
    constexpr int NV = 16 / sizeof(scalar_t);
    bool vec = row % NV == 0;
    const at::Tensor* all[] = {&key, &value, &key_cache, &value_cache};
    for (const at::Tensor* t : all) {
      vec = vec && aligned16(t->data_ptr()) && t->stride(0) % NV == 0;
    }
    const int per = vec ? NV : 1;
    const int threads = std::max(32, std::min(256, (row / per + 31) / 32 * 32));
    auto go = [&](auto n_tag) {
      constexpr int N = decltype(n_tag)::value;
      reshape_and_cache_kernel<scalar_t, N><<<T, threads, 0, stream>>>(
          ptr<scalar_t>(key), key.stride(0), ptr<scalar_t>(value), value.stride(0),
          ptr<scalar_t>(key_cache), ptr<scalar_t>(value_cache), key_cache.stride(0),
          value_cache.stride(0), slots.data_ptr<int64_t>(), block_size, row);
    };
    vec ? go(std::integral_constant<int, NV>{}) : go(std::integral_constant<int, 1>{});
  });
  VLLM_LAUNCH_CHECK();
}

}  // namespace vllm
