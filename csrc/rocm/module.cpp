// `import vllm._rocm_C` loads this module, which registers the _rocm_C ops (rocm_ops.cu).
#include <Python.h>

static struct PyModuleDef vllm_rocm_module = {PyModuleDef_HEAD_INIT, "_rocm_C", "vllm ROCm-only kernels", -1,
                                              nullptr};
PyMODINIT_FUNC PyInit__rocm_C(void) { return PyModule_Create(&vllm_rocm_module); }
