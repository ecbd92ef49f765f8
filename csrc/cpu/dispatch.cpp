// Run-time ISA choice: the best kernel table this CPU can execute (never one it cannot).
// Built without ISA flags, like the torch launchers.
#include <cstring>
#include "cpu/kernels/api.h"

namespace vllm_cpu {
namespace {

const KernelTable* best_table() {
#if VLLM_CPU_HAVE_X86
  if (cpu_supports("avx512_bf16")) return &table_avx512_bf16();
  if (cpu_supports("avx512")) return &table_avx512();
  if (cpu_supports("avx2")) return &table_avx2();
#endif
  return &table_scalar();
}

const KernelTable*& active() {
  static const KernelTable* t = best_table();
  return t;
}

}  // namespace

bool cpu_supports(const char* isa) {
  if (std::strcmp(isa, "scalar") == 0) return true;
#if VLLM_CPU_HAVE_X86
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx2") == 0)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
  if (std::strcmp(isa, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  if (std::strcmp(isa, "avx512_bf16") == 0)
    return cpu_supports("avx512") && __builtin_cpu_supports("avx512bf16");
#endif
  return false;
}

const KernelTable& kernels() { return *active(); }
const char* current_isa() { return active()->isa; }

bool force_isa(const char* name) {
  if (!cpu_supports(name)) return false;
  active() = &table_scalar();
#if VLLM_CPU_HAVE_X86
  if (std::strcmp(name, "avx512") == 0) active() = &table_avx512();
  if (std::strcmp(name, "avx512_bf16") == 0) active() = &table_avx512_bf16();
  if (std::strcmp(name, "avx2") == 0) active() = &table_avx2();
#endif
  return true;
}

}  // namespace vllm_cpu
