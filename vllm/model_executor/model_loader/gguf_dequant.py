"""Vectorized torch dequantizers for the GGUF (llama.cpp) block formats we load.

Every format stores blocks of 32 values; a block starts with an fp16 scale ``d`` (Q4_1 adds an
fp16 minimum ``m``). Q8_0: 32 int8, x = d*q. Q4_0: 16 bytes of nibbles, x = d*(q-8). Q4_1: 16 bytes
of nibbles, x = d*q + m. The low nibbles of the 16 bytes are values 0..15 of the block, the high
nibbles values 16..31.
"""

from __future__ import annotations

import numpy as np
import torch
from gguf import GGMLQuantizationType as QType

BLOCK = 32
# bytes per block of 32 values
BLOCK_BYTES = {QType.Q8_0: 34, QType.Q4_0: 18, QType.Q4_1: 20}
PLAIN = {QType.F32: torch.float32, QType.F16: torch.float16, QType.BF16: torch.bfloat16}
SUPPORTED = tuple(PLAIN) + tuple(BLOCK_BYTES)


def _f16(cols: torch.Tensor) -> torch.Tensor:
    """[N, 2] uint8 -> [N, 1] float32 (little-endian fp16)."""
    return cols.contiguous().view(torch.float16).to(torch.float32)


def _nibbles(qs: torch.Tensor) -> torch.Tensor:
    """[N, 16] uint8 -> [N, 32] float32 values 0..15 (low nibbles first, then high)."""
    q = torch.empty(qs.shape[0], 2, 16, dtype=torch.uint8)  # [N, lo|hi, 16]
    torch.bitwise_and(qs, 0x0F, out=q[:, 0])
    torch.bitwise_right_shift(qs, 4, out=q[:, 1])
    return q.view(-1, 32).to(torch.float32)


def dequant_q8_0(blocks: torch.Tensor) -> torch.Tensor:
    d = _f16(blocks[:, 0:2])  # [N, 1]
    q = blocks[:, 2:34].contiguous().view(torch.int8).to(torch.float32)  # [N, 32]
    return d * q


def dequant_q4_0(blocks: torch.Tensor) -> torch.Tensor:
    d = _f16(blocks[:, 0:2])
    return d * (_nibbles(blocks[:, 2:18]) - 8.0)


def dequant_q4_1(blocks: torch.Tensor) -> torch.Tensor:
    d = _f16(blocks[:, 0:2])
    m = _f16(blocks[:, 2:4])
    return torch.addcmul(m, d, _nibbles(blocks[:, 4:20]))


_DEQUANT = {QType.Q8_0: dequant_q8_0, QType.Q4_0: dequant_q4_0, QType.Q4_1: dequant_q4_1}


def dequantize(raw: np.ndarray, qtype: int, shape: tuple[int, ...],
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Raw tensor bytes (or a plain-typed array) -> a ``shape`` tensor (row-major, HF order).

    ``shape`` is the PyTorch shape (the reverse of GGUF's ``ne``); its last dim must be a multiple
    of 32 for block formats.
    """
    qtype = QType(qtype)
    numel = int(np.prod(shape)) if shape else 1
    if qtype in PLAIN:
        src = PLAIN[qtype]
        flat = torch.from_numpy(np.array(raw, copy=True).reshape(-1).view(np.uint8))
        return flat.view(src)[:numel].reshape(shape).to(dtype)
    if qtype not in _DEQUANT:
        names = ", ".join(t.name for t in SUPPORTED)
        raise ValueError(f"GGUF tensor type {qtype.name} is not supported; supported: {names}")
    if numel % BLOCK:
        raise ValueError(f"GGUF {qtype.name} tensor of shape {shape}: size not a multiple of 32")
    data = torch.from_numpy(np.array(raw, copy=True).reshape(-1).view(np.uint8))
    nblocks = numel // BLOCK
    need = nblocks * BLOCK_BYTES[qtype]
    if data.numel() < need:
        raise ValueError(f"GGUF {qtype.name} tensor of shape {shape} is truncated "
                         f"({data.numel()} of {need} bytes)")
    blocks = data[:need].view(nblocks, BLOCK_BYTES[qtype])  # [N, block bytes]
    return _DEQUANT[qtype](blocks).reshape(shape).to(dtype)
