# CUDA target: vllm._C from csrc/cuda/*.cu + csrc/cuda/torch_bindings.cpp.
# VLLM_CUDA_ARCHS: semicolon list of SM numbers (default 90 = Hopper).
set(VLLM_CUDA_ARCHS "90" CACHE STRING "CUDA architectures, e.g. 80;90")
set(CMAKE_CUDA_ARCHITECTURES ${VLLM_CUDA_ARCHS})
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)

file(GLOB VLLM_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../csrc/cuda/*.cu)
list(APPEND VLLM_CUDA_SOURCES ${CMAKE_CURRENT_LIST_DIR}/../csrc/cuda/torch_bindings.cpp)

set(VLLM_CUDA_FLAGS
  $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>
  $<$<COMPILE_LANGUAGE:CUDA>:-U__CUDA_NO_HALF_OPERATORS__>
  $<$<COMPILE_LANGUAGE:CUDA>:-U__CUDA_NO_HALF_CONVERSIONS__>
  $<$<COMPILE_LANGUAGE:CUDA>:-U__CUDA_NO_BFLOAT16_CONVERSIONS__>
  $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)

vllm_extension(NAME _C
  SOURCES ${VLLM_CUDA_SOURCES}
  COMPILE_OPTIONS ${VLLM_CUDA_FLAGS}
  LIBRARIES c10_cuda)
message(STATUS "vllm: building _C for CUDA archs ${VLLM_CUDA_ARCHS}")

# Link the C++ runtime that torch itself loads, by path: a toolchain that links libstdc++
# statically by default (the GPU image's /opt/gcc) otherwise leaves a second runtime beside
# torch's, and c10's error formatting crashes inside it (segfault on any failed TORCH_CHECK).
execute_process(
  COMMAND ${Python_EXECUTABLE} -c
    "import torch; print(next((l.split()[-1] for l in open('/proc/self/maps') if 'libstdc++' in l), ''))"
  OUTPUT_VARIABLE VLLM_LIBSTDCXX OUTPUT_STRIP_TRAILING_WHITESPACE)
if(VLLM_LIBSTDCXX)
  target_link_libraries(_C PRIVATE ${VLLM_LIBSTDCXX})
  message(STATUS "vllm: linking the C++ runtime torch uses: ${VLLM_LIBSTDCXX}")
endif()
