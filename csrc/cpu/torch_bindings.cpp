// vllm._C_cpu: op schemas (TORCH_LIBRARY), CPU implementations, and pybind11 helpers
// (isa, compiled_isas, set_isa, bind_omp_threads).
#include <sched.h>
#include <omp.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/library.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cpu/kernels/api.h"
#include "cpu/ops.h"

TORCH_LIBRARY(_C_cpu, m) {
  m.def("rms_norm(Tensor! out, Tensor input, Tensor weight, float epsilon) -> ()");
  m.def("fused_add_rms_norm(Tensor! input, Tensor! residual, Tensor weight, float epsilon) -> ()");
  m.def("silu_and_mul(Tensor! out, Tensor input) -> ()");
  m.def("gelu_and_mul(Tensor! out, Tensor input) -> ()");
  m.def("gelu_tanh_and_mul(Tensor! out, Tensor input) -> ()");
  m.def("rotary_embedding(Tensor positions, Tensor! query, Tensor!? key, int head_size, "
        "Tensor cos_sin_cache, bool is_neox) -> ()");
  m.def("reshape_and_cache(Tensor key, Tensor value, Tensor! key_cache, Tensor! value_cache, "
        "Tensor slot_mapping) -> ()");
  m.def("paged_attention(Tensor! out, Tensor query, Tensor key_cache, Tensor value_cache, "
        "Tensor block_tables, Tensor seq_lens, Tensor query_start_loc, int max_query_len, "
        "int max_seq_len, float scale) -> ()");
  m.def("fused_moe(Tensor! out, Tensor hidden, Tensor w13, Tensor w2, Tensor topk_weights, "
        "Tensor topk_ids) -> ()");
}

TORCH_LIBRARY_IMPL(_C_cpu, CPU, m) {
  m.impl("rms_norm", &vllm_cpu::rms_norm);
  m.impl("fused_add_rms_norm", &vllm_cpu::fused_add_rms_norm);
  m.impl("silu_and_mul", &vllm_cpu::silu_and_mul);
  m.impl("gelu_and_mul", &vllm_cpu::gelu_and_mul);
  m.impl("gelu_tanh_and_mul", &vllm_cpu::gelu_tanh_and_mul);
  m.impl("rotary_embedding", &vllm_cpu::rotary_embedding);
  m.impl("reshape_and_cache", &vllm_cpu::reshape_and_cache);
  m.impl("paged_attention", &vllm_cpu::paged_attention);
  m.impl("fused_moe", &vllm_cpu::fused_moe);
}

namespace {

std::vector<std::string> compiled_isas() {
  std::vector<std::string> out;
  std::string all = VLLM_CPU_COMPILED_ISAS;
  size_t start = 0;
  while (start <= all.size()) {
    size_t end = all.find(',', start);
    if (end == std::string::npos) end = all.size();
    if (end > start) out.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  // table_avx512.cpp also holds the avx512_bf16 table (cmake lists the translation units).
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] == "avx512") {
      out.insert(out.begin() + i + 1, "avx512_bf16");
      break;
    }
  return out;
}

void set_isa(const std::string& name) {
  std::vector<std::string> have = compiled_isas();
  bool compiled = false;
  for (const auto& h : have) compiled |= h == name;
  if (!compiled) throw std::invalid_argument("set_isa: '" + name + "' is not compiled in");
  if (!vllm_cpu::force_isa(name.c_str()))
    throw std::invalid_argument("set_isa: this CPU does not support '" + name + "'");
}

// Pin OpenMP thread i to cores[i] (one core each), from inside a parallel region.
void bind_omp_threads(const std::vector<int>& cores) {
  if (cores.empty()) throw std::invalid_argument("bind_omp_threads: cores must not be empty");
  for (int c : cores)
    if (c < 0 || c >= CPU_SETSIZE)
      throw std::invalid_argument("bind_omp_threads: core " + std::to_string(c) + " is invalid");
  const int n = static_cast<int>(cores.size());
  omp_set_num_threads(n);
  std::vector<int> errors(n, 0);
#pragma omp parallel num_threads(n)
  {
    const int tid = omp_get_thread_num();
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cores[tid], &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) errors[tid] = errno;
  }
  for (int i = 0; i < n; ++i)
    if (errors[i] != 0)
      throw std::runtime_error("bind_omp_threads: cannot bind thread " + std::to_string(i) +
                               " to core " + std::to_string(cores[i]) + ": " +
                               std::strerror(errors[i]));
}

}  // namespace

PYBIND11_MODULE(_C_cpu, m) {
  m.doc() = "vLLM CPU kernels (ops live in torch.ops._C_cpu)";
  m.def("isa", [] { return std::string(vllm_cpu::current_isa()); },
        "ISA the kernels dispatch to at run time: avx512_bf16 | avx512 | avx2 | scalar");
  m.def("compiled_isas", &compiled_isas, "ISAs compiled into this build");
  m.def("set_isa", &set_isa, "Force the kernels onto a compiled ISA this CPU supports (tests)");
  m.def("bind_omp_threads", &bind_omp_threads, "Pin each OpenMP thread to one core");
}
