# ROCm target: vllm._C from the CUDA sources compiled as HIP (csrc/common/portability.cuh maps
# the CUDA names; no hipify step), plus vllm._rocm_C from csrc/rocm/.
set(VLLM_ROCM_ARCHS "gfx90a;gfx942" CACHE STRING "AMD GPU targets")
set(CMAKE_HIP_ARCHITECTURES ${VLLM_ROCM_ARCHS})
set(CMAKE_HIP_STANDARD 17)
enable_language(HIP)

file(GLOB VLLM_C_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../csrc/cuda/*.cu)
file(GLOB VLLM_ROCM_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../csrc/rocm/*.cu)
set_source_files_properties(${VLLM_C_SOURCES} ${VLLM_ROCM_SOURCES} PROPERTIES LANGUAGE HIP)

set(VLLM_HIP_FLAGS -DUSE_ROCM -D__HIP_PLATFORM_AMD__=1
  $<$<COMPILE_LANGUAGE:HIP>:-U__HIP_NO_HALF_CONVERSIONS__>
  $<$<COMPILE_LANGUAGE:HIP>:-U__HIP_NO_HALF_OPERATORS__>
  $<$<COMPILE_LANGUAGE:HIP>:-fno-gpu-rdc>)

vllm_extension(NAME _C
  SOURCES ${VLLM_C_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/../csrc/cuda/torch_bindings.cpp
  COMPILE_OPTIONS ${VLLM_HIP_FLAGS}
  LIBRARIES c10_hip)
vllm_extension(NAME _rocm_C
  SOURCES ${VLLM_ROCM_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/../csrc/rocm/module.cpp
  COMPILE_OPTIONS ${VLLM_HIP_FLAGS}
  LIBRARIES c10_hip)
message(STATUS "vllm: building _C and _rocm_C for ROCm archs ${VLLM_ROCM_ARCHS}")

# Link the C++ runtime that torch itself loads, by path: a toolchain that links libstdc++
# statically by default (the GPU image's /opt/gcc) otherwise leaves a second runtime beside
# torch's, and c10's error formatting crashes inside it (segfault on any failed TORCH_CHECK).
execute_process(
  COMMAND ${Python_EXECUTABLE} -c
    "import torch; print(next((l.split()[-1] for l in open('/proc/self/maps') if 'libstdc++' in l), ''))"
  OUTPUT_VARIABLE VLLM_LIBSTDCXX OUTPUT_STRIP_TRAILING_WHITESPACE)
if(VLLM_LIBSTDCXX)
  target_link_libraries(_C PRIVATE ${VLLM_LIBSTDCXX})
  target_link_libraries(_rocm_C PRIVATE ${VLLM_LIBSTDCXX})
  message(STATUS "vllm: linking the C++ runtime torch uses: ${VLLM_LIBSTDCXX}")
endif()
