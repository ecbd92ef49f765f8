"""A lean GGUF (v2/v3) parser: metadata as plain Python values, tensors as memory-mapped bytes.

``gguf.GGUFReader`` builds a numpy view per array element, which takes several seconds for a
49k-token vocabulary; this reads the same header in a fraction of that (start-up time matters).
Enum values and block sizes come from the ``gguf`` package; tests cross-check against GGUFReader.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

MAGIC = b"GGUF"
_SCALARS: dict[int, tuple[str, np.dtype]] = {
    GGUFValueType.UINT8: ("<B", np.dtype("<u1")),
    GGUFValueType.INT8: ("<b", np.dtype("<i1")),
    GGUFValueType.UINT16: ("<H", np.dtype("<u2")),
    GGUFValueType.INT16: ("<h", np.dtype("<i2")),
    GGUFValueType.UINT32: ("<I", np.dtype("<u4")),
    GGUFValueType.INT32: ("<i", np.dtype("<i4")),
    GGUFValueType.FLOAT32: ("<f", np.dtype("<f4")),
    GGUFValueType.BOOL: ("<?", np.dtype("?")),
    GGUFValueType.UINT64: ("<Q", np.dtype("<u8")),
    GGUFValueType.INT64: ("<q", np.dtype("<i8")),
    GGUFValueType.FLOAT64: ("<d", np.dtype("<f8")),
}
_PLAIN_NP = {GGMLQuantizationType.F32: np.float32, GGMLQuantizationType.F16: np.float16}


@dataclass(frozen=True)
class GGUFTensor:
    name: str  # GGUF name
    qtype: int  # GGMLQuantizationType value
    shape: tuple[int, ...]  # PyTorch order (reverse of GGUF ne)
    raw: np.ndarray  # memory-mapped bytes (typed values for F32/F16)


@dataclass(frozen=True)
class GGUFFile:
    path: str
    metadata: dict[str, Any]
    tensors: tuple[GGUFTensor, ...]

    @property
    def arch(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def tensor_names(self) -> set[str]:
        return {t.name for t in self.tensors}


class _Cursor:
    def __init__(self, buf: memoryview, path: str) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise ValueError(f"{self.path} is not a readable GGUF file: truncated header")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return bytes(self.take(self.scalar("<Q"))).decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype == GGUFValueType.STRING:
            return self.string()
        if vtype == GGUFValueType.ARRAY:
            item, count = self.scalar("<I"), self.scalar("<Q")
            if item == GGUFValueType.STRING:
                return [self.string() for _ in range(count)]
            if item in _SCALARS:
                dt = _SCALARS[item][1]
                return np.frombuffer(self.take(count * dt.itemsize), dtype=dt).tolist()
            return [self.value(item) for _ in range(count)]
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype][0])
        raise ValueError(f"{self.path} is not a readable GGUF file: value type {vtype}")


def _tensor(path: str, data: np.ndarray, name: str, ne: list[int], qtype: int,
            offset: int) -> GGUFTensor:
    try:
        kind = GGMLQuantizationType(qtype)
    except ValueError:
        raise ValueError(f"GGUF tensor {name!r} in {path} has unknown type {qtype}") from None
    block, type_size = GGML_QUANT_SIZES[kind]
    numel = int(np.prod(ne)) if ne else 1
    nbytes = numel // block * type_size
    if offset + nbytes > data.size:
        raise ValueError(f"GGUF file {path} is truncated: tensor {name!r} ends past the file")
    raw = data[offset:offset + nbytes]
    if kind in _PLAIN_NP:
        raw = raw.view(_PLAIN_NP[kind])
    return GGUFTensor(name, int(kind), tuple(reversed(ne)), raw)


def read_gguf(path: str) -> GGUFFile:
    """Parse a GGUF file's header; tensor bytes stay memory-mapped (read-only)."""
    try:
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read GGUF file {path}: {e}") from e
    cur = _Cursor(memoryview(mm), path)
    if bytes(cur.take(4)) != MAGIC:
        raise ValueError(f"{path} is not a GGUF file (bad magic)")
    version = cur.scalar("<I")
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version} is not supported (2 or 3)")
    n_tensors, n_kv = cur.scalar("<Q"), cur.scalar("<Q")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        metadata[key] = cur.value(cur.scalar("<I"))
    infos = []
    for _ in range(n_tensors):
        name = cur.string()
        ne = [cur.scalar("<Q") for _ in range(cur.scalar("<I"))]
        infos.append((name, ne, cur.scalar("<I"), cur.scalar("<Q")))
    align = int(metadata.get("general.alignment", 32))
    start = (cur.pos + align - 1) // align * align
    data = np.frombuffer(mm, dtype=np.uint8)[start:]
    tensors = tuple(_tensor(path, data, *info) for info in infos)
    return GGUFFile(path, metadata, tensors)
