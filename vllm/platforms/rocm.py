"""AMD ROCm platform: hipified `_C` plus ROCm-only `_rocm_C`, RCCL (torch calls it nccl)."""

from __future__ import annotations

import torch

from vllm.platforms.cuda import CudaPlatform


class RocmPlatform(CudaPlatform):
    """ROCm shares torch's `cuda` device type; it prefers its own kernels, then the hipified ones."""

    name = "rocm"
    extensions = ("_C", "_rocm_C")
    op_method_order = ("hip", "cuda", "native")
    default_attention_backend = "rocm"

    def kernel_namespace(self, method: str) -> str | None:
        return {"hip": "_C", "cuda": "_C"}.get(method)

    def supports_graphs(self) -> bool:
        return True

    def unquantized_gemm(self) -> None:
        """hipBLASLt for every product: `_C::gemv` compiles for ROCm (its header is in
        csrc/rocm/check) but was tuned on an H100 and never timed on an AMD GPU."""
        return None

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__, "hip": str(torch.version.hip)}
