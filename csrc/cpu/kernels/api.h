// The framework-free kernel interface: one table of entry points per vector ISA.
// Launchers (torch side) fill these argument structs from validated tensors; strides are in
// elements and the innermost dimension is always contiguous.
#pragma once

#include <cstdint>
#include "cpu/common/dtypes.h"

namespace vllm_cpu {

struct RmsNormArgs {
  void* out;          // [rows, hidden], row stride out_stride
  void* input;        // [rows, hidden], row stride in_stride (fused: updated in place)
  void* residual;     // fused only: [rows, hidden], row stride res_stride (updated in place)
  const void* weight; // [hidden]
  int64_t rows, hidden, in_stride, out_stride, res_stride;
  float eps;
};

enum class Act : int { silu = 0, gelu = 1, gelu_tanh = 2 };

struct ActArgs {
  void* out;          // [rows, d], row stride out_stride
  const void* input;  // [rows, 2d], row stride in_stride
  int64_t rows, d, in_stride, out_stride;
  Act act;
};

struct RotaryArgs {
  const int64_t* positions;  // [tokens]
  void* query;               // [tokens, hq, head_size]
  void* key;                 // [tokens, hk, head_size] or nullptr
  const void* cos_sin;       // [max_pos, rot_dim] (cos | sin), row stride cs_stride
  int64_t tokens, hq, hk, head_size, rot_dim;
  int64_t q_tok_stride, q_head_stride, k_tok_stride, k_head_stride, cs_stride;
  bool is_neox;
};

struct CacheArgs {
  const void* key;          // [tokens, hk, d]
  const void* value;
  void* key_cache;          // [blocks, block_size, hk, d] contiguous
  void* value_cache;
  const int64_t* slots;     // [tokens]
  int64_t tokens, hk, d, block_size, num_slots;
  int64_t k_tok_stride, k_head_stride, v_tok_stride, v_head_stride;
  int64_t elem_size;        // bytes per element (copy is dtype-agnostic)
};

struct AttnArgs {
  void* out;                 // [T, hq, d], strides out_tok_stride / out_head_stride
  const void* query;         // [T, hq, d]
  const void* key_cache;     // [blocks, block_size, hk, d] contiguous
  const void* value_cache;
  const int32_t* block_tables;  // [S, max_blocks]
  const int32_t* seq_lens;      // [S]
  const int32_t* query_start_loc;  // [S + 1]
  int64_t num_seqs, hq, hk, d, block_size, max_blocks, bt_stride;
  int64_t q_tok_stride, q_head_stride, out_tok_stride, out_head_stride;
  int64_t max_query_len;
  float scale;
};

struct KernelTable {
  const char* isa;
  void (*rms_norm)(DType, const RmsNormArgs&);
  void (*fused_add_rms_norm)(DType, const RmsNormArgs&);
  void (*act_and_mul)(DType, const ActArgs&);
  void (*rotary)(DType, const RotaryArgs&);
  void (*reshape_and_cache)(const CacheArgs&);
  void (*paged_attention)(DType, const AttnArgs&);
};

// One table per ISA compiled in (each in its own translation unit with its own flags).
const KernelTable& table_scalar();
const KernelTable& table_avx2();
const KernelTable& table_avx512();
const KernelTable& table_avx512_bf16();  // table_avx512 + AVX512-BF16 decode attention

// Runtime choice (dispatch.cpp): the best ISA the running CPU supports, unless forced lower.
const KernelTable& kernels();
const char* current_isa();
// Force a (supported) ISA by name; returns false if unknown or unsupported by this CPU.
bool force_isa(const char* name);
bool cpu_supports(const char* isa);

}  // namespace vllm_cpu
