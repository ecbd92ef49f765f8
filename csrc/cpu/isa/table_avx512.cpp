// Kernels for AVX-512 F/BW/VL/DQ (built with the AVX-512 flags).
#include "cpu/common/vec_avx512.h"
#define VLLM_VEC VecAvx512
#define VLLM_TABLE_FN table_avx512
#include "cpu/isa/table_impl.inc"
