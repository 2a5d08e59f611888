"""The safetensors format, read and written with numpy alone.

File: u64 little-endian header length N, N bytes of JSON
{"name": {"dtype": "F32"|"F16"|"BF16"|..., "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}},
then the raw little-endian data; offsets are relative to the end of the header.
Tensors are memory-mapped, so reading a 13B checkpoint costs one tensor of memory at a time.
"""
from __future__ import annotations

import json
import struct

import numpy as np

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
           "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
_NAMES = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<f8"): "F64", np.dtype("<i8"): "I64"}


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the high half of a float32: shift the 16 bits up."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16 bits (uint16)."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16)


class SafetensorsFile:
    """One .safetensors file: `names`, `shape(name)`, `dtype(name)`, `raw(name)` (memmap), `tensor(name)` (float32)."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        self.metadata = header.pop("__metadata__", {})
        self._entries = header
        self._data_start = 8 + header_len
        self._map = np.memmap(path, dtype=np.uint8, mode="r") if header else None

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._entries[name]["shape"])

    def dtype(self, name: str) -> str:
        return self._entries[name]["dtype"]

    def raw(self, name: str) -> np.ndarray:
        """The stored values, memory-mapped (bf16 as uint16 bits)."""
        e = self._entries[name]
        if e["dtype"] not in _DTYPES:
            raise ValueError(f"{self.path}: {name} has unsupported dtype {e['dtype']}")
        begin, end = e["data_offsets"]
        dtype = np.dtype(_DTYPES[e["dtype"]])
        count = int(np.prod(e["shape"], dtype=np.int64))
        if end - begin != count * dtype.itemsize:
            raise ValueError(f"{self.path}: {name} spans {end - begin} bytes, shape {e['shape']} needs {count * dtype.itemsize}")
        start = self._data_start + begin
        return self._map[start:start + end - begin].view(dtype).reshape(e["shape"])

    def tensor(self, name: str) -> np.ndarray:
        """float32 copy (F32 stays a memmap view)."""
        raw = self.raw(name)
        if self.dtype(name) == "BF16":
            return bf16_to_f32(raw)
        return raw if raw.dtype == np.float32 else raw.astype(np.float32)


def write_safetensors(path: str, tensors: dict[str, np.ndarray], bf16: set[str] = frozenset(),
                      metadata: dict[str, str] | None = None) -> None:
    """Write `tensors` in order; names in `bf16` are float32 arrays stored as BF16."""
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        if name in bf16:
            data, dtype = f32_to_bf16(array), "BF16"
        else:
            data = np.ascontiguousarray(array)
            dtype = _NAMES[data.dtype]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + data.nbytes]}
        offset += data.nbytes
        blobs.append(data)
    if metadata:
        header["__metadata__"] = metadata
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # data starts 8-byte aligned, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for data in blobs:
            f.write(memoryview(data).cast("B"))
