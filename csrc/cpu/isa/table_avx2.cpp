// Kernels for AVX2 + FMA + F16C (built with -mavx2 -mfma -mf16c).
#include "cpu/common/vec_avx2.h"
#define VLLM_VEC VecAvx2
#define VLLM_TABLE_FN table_avx2
#include "cpu/isa/table_impl.inc"
