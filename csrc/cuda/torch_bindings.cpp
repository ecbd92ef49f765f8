// Registers the _C ops (CUDA build, and the hipified ROCm build) with the torch dispatcher.
#include <Python.h>
#include <torch/library.h>

#include "cuda/ops.h"

TORCH_LIBRARY(_C, m) {
  m.def("rms_norm(Tensor! out, Tensor input, Tensor weight, float epsilon) -> ()");
  m.def("fused_add_rms_norm(Tensor! input, Tensor! residual, Tensor weight, float epsilon) -> ()");
  m.def("silu_and_mul(Tensor! out, Tensor input) -> ()");
  m.def("gelu_and_mul(Tensor! out, Tensor input) -> ()");
  m.def("gelu_tanh_and_mul(Tensor! out, Tensor input) -> ()");
  m.def(
      "rotary_embedding(Tensor positions, Tensor! query, Tensor!? key, int head_size, "
      "Tensor cos_sin_cache, bool is_neox) -> ()");
  m.def(
      "reshape_and_cache(Tensor key, Tensor value, Tensor! key_cache, Tensor! value_cache, "
      "Tensor slot_mapping) -> ()");
  m.def(
      "paged_attention(Tensor! out, Tensor query, Tensor key_cache, Tensor value_cache, "
      "Tensor block_tables, Tensor seq_lens, Tensor query_start_loc, int max_query_len, "
      "int max_seq_len, float scale) -> ()");
  m.def("gemv(Tensor! out, Tensor x, Tensor weight, Tensor? bias, int rows_per_warp) -> ()");
  m.def(
      "fused_moe(Tensor! out, Tensor hidden, Tensor w13, Tensor w2, Tensor topk_weights, "
      "Tensor topk_ids) -> ()");
}

TORCH_LIBRARY_IMPL(_C, CUDA, m) {
  m.impl("rms_norm", &vllm::rms_norm);
  m.impl("fused_add_rms_norm", &vllm::fused_add_rms_norm);
  m.impl("silu_and_mul", &vllm::silu_and_mul);
  m.impl("gelu_and_mul", &vllm::gelu_and_mul);
  m.impl("gelu_tanh_and_mul", &vllm::gelu_tanh_and_mul);
  m.impl("rotary_embedding", &vllm::rotary_embedding);
  m.impl("reshape_and_cache", &vllm::reshape_and_cache);
  m.impl("paged_attention", &vllm::paged_attention);
  m.impl("gemv", &vllm::gemv);
  m.impl("fused_moe", &vllm::fused_moe);
}

// `import vllm._C` loads this module, which registers the ops above.
static struct PyModuleDef vllm_c_module = {PyModuleDef_HEAD_INIT, "_C", "vllm CUDA kernels", -1, nullptr};
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&vllm_c_module); }
