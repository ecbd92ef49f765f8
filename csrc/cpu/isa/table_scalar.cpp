// Kernels for CPUs without AVX2: built with no ISA flags.
#include "cpu/common/vec_scalar.h"
#define VLLM_VEC VecScalar
#define VLLM_TABLE_FN table_scalar
#include "cpu/isa/table_impl.inc"
