// Kernels for AVX-512 F/BW/VL/DQ (built with the AVX-512 flags), and the avx512_bf16 table:
// the same kernels except the decode attention scorer, which uses vdpbf16ps (compiled for that
// one function by a target attribute; the table is chosen only on CPUs that report it).
#include "cpu/common/vec_avx512.h"
#include "cpu/kernels/bf16_dot_avx512.h"
#define VLLM_VEC VecAvx512
#define VLLM_TABLE_FN table_avx512
#include "cpu/isa/table_impl.inc"

namespace vllm_cpu {

const KernelTable& table_avx512_bf16() {
  static const KernelTable table = [] {
    KernelTable t = table_avx512();
    t.isa = VecAvx512Bf16::name();
    t.paged_attention = k_paged_attention<VecAvx512Bf16>;
    return t;
  }();
  return table;
}

}  // namespace vllm_cpu
