# vllm._C_cpu: the CPU kernels. Kernel tables are built once per vector ISA, each translation
# unit with its own flags (scalar: none, AVX2, AVX-512) and chosen at run time; the torch
# launchers and bindings are built with no ISA flags so they run on any x86-64 (or other) CPU.
find_package(OpenMP REQUIRED COMPONENTS CXX)

set(_cpu_dir ${CMAKE_CURRENT_LIST_DIR}/../csrc/cpu)
set(VLLM_CPU_SOURCES
  ${_cpu_dir}/torch_bindings.cpp
  ${_cpu_dir}/ops_elementwise.cpp
  ${_cpu_dir}/ops_attention.cpp
  ${_cpu_dir}/dispatch.cpp
  ${_cpu_dir}/gemm_small_m.cpp
  ${_cpu_dir}/isa/table_scalar.cpp)
set(VLLM_CPU_ISAS scalar)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  list(APPEND VLLM_CPU_SOURCES ${_cpu_dir}/isa/table_avx2.cpp ${_cpu_dir}/isa/table_avx512.cpp)
  set_source_files_properties(${_cpu_dir}/isa/table_avx2.cpp PROPERTIES
    COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
  set_source_files_properties(${_cpu_dir}/isa/table_avx512.cpp PROPERTIES
    COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512dq;-mavx2;-mfma;-mf16c;-Wno-maybe-uninitialized")
  list(APPEND VLLM_CPU_ISAS avx2 avx512)
  set(_isa_defs VLLM_CPU_HAVE_X86=1)
else()
  set(_isa_defs VLLM_CPU_HAVE_X86=0)
endif()
string(JOIN "," _isa_list ${VLLM_CPU_ISAS})
message(STATUS "vllm _C_cpu: kernel ISAs ${_isa_list}")

vllm_extension(
  NAME _C_cpu
  SOURCES ${VLLM_CPU_SOURCES}
  COMPILE_OPTIONS -O3 -fno-math-errno -Wall -Wno-unused-function
  LIBRARIES OpenMP::OpenMP_CXX)
target_compile_definitions(_C_cpu PRIVATE ${_isa_defs} VLLM_CPU_COMPILED_ISAS="${_isa_list}")
