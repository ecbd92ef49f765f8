# Shared helpers: find Python + torch, and define a torch extension module.

macro(vllm_find_torch)
  find_package(Python REQUIRED COMPONENTS Interpreter Development.Module)
  execute_process(
    COMMAND ${Python_EXECUTABLE} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  list(APPEND CMAKE_PREFIX_PATH ${_torch_prefix})
  execute_process(
    COMMAND ${Python_EXECUTABLE} -c "import pybind11; print(pybind11.get_cmake_dir())"
    OUTPUT_VARIABLE _pybind_dir OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  list(APPEND CMAKE_PREFIX_PATH ${_pybind_dir})
  find_package(Torch REQUIRED)
  find_library(TORCH_PYTHON_LIBRARY torch_python PATHS "${TORCH_INSTALL_PREFIX}/lib" REQUIRED)
endmacro()

# vllm_extension(NAME <mod> SOURCES ... [COMPILE_OPTIONS ...] [LIBRARIES ...])
# Builds <mod>.<abi>.so importable as vllm.<mod>; ops register with TORCH_LIBRARY, helpers
# through PYBIND11_MODULE(<mod>, m).
function(vllm_extension)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;COMPILE_OPTIONS;LIBRARIES;INCLUDES" ${ARGN})
  Python_add_library(${ARG_NAME} MODULE WITH_SOABI ${ARG_SOURCES})
  target_include_directories(${ARG_NAME} PRIVATE ${CMAKE_SOURCE_DIR}/csrc ${ARG_INCLUDES})
  target_compile_definitions(${ARG_NAME} PRIVATE TORCH_EXTENSION_NAME=${ARG_NAME} VLLM_EXT_NAME=${ARG_NAME})
  target_compile_options(${ARG_NAME} PRIVATE ${ARG_COMPILE_OPTIONS})
  target_link_libraries(${ARG_NAME} PRIVATE ${TORCH_LIBRARIES} ${TORCH_PYTHON_LIBRARY} ${ARG_LIBRARIES})
  set_target_properties(${ARG_NAME} PROPERTIES PREFIX "")
endfunction()
