"""4-bit block quantization in com.microsoft.MatMulNBits layout (bits=4).

For Y = A @ W with W [K, N] (storage layout), MatMulNBits takes W^T, i.e. [N, K], cut along K into
n_blocks = ceil(K / block_size) blocks (the last zero-padded):
  B            uint8 [N, n_blocks, block_size / 2]  two codes a byte, element 2j in the low nibble
  scales       [N * n_blocks] in the activation dtype
  zero_points  uint8 [N * ceil(n_blocks / 2)]       two a byte, low nibble first, each row byte-padded;
               absent = 8 for every block (symmetric)
  W[k, n] = (code - zero_point) * scale of (n, k // block_size).
Symmetric: scale = max|w| / 7, codes 1..15 around 8. Asymmetric: the block's [min, max] (widened to
hold 0) over codes 0..15, zero point = round(-min / scale).
"""
from __future__ import annotations

import dataclasses

import numpy as np

_ROWS_PER_BAND = 4096


@dataclasses.dataclass(frozen=True)
class Int4Params:
    block_size: int = 32
    symmetric: bool = False


def num_blocks(k: int, block_size: int) -> int:
    return (k + block_size - 1) // block_size


def quantize(w_kn: np.ndarray, p: Int4Params, scale_dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """W [K, N] float -> (B [N, nb, bs/2] uint8, scales [N*nb], zero_points [N*ceil(nb/2)] uint8 or None)."""
    k, n = w_kn.shape
    bs, nb = p.block_size, num_blocks(k, p.block_size)
    packed = np.empty((n, nb, bs // 2), np.uint8)
    scales = np.empty((n, nb), scale_dtype)
    zps = np.empty((n, (nb + 1) // 2), np.uint8)
    for start in range(0, n, _ROWS_PER_BAND):
        rows = np.zeros((min(_ROWS_PER_BAND, n - start), nb * bs), np.float32)   # [band, nb*bs]
        rows[:, :k] = w_kn[:, start:start + rows.shape[0]].T
        blocks = rows.reshape(rows.shape[0], nb, bs)                             # [band, nb, bs]
        if p.symmetric:
            scale = np.abs(blocks).max(axis=2) / 7.0                             # [band, nb]
            zero = np.full(scale.shape, 8.0, np.float32)
        else:
            lo = np.minimum(blocks.min(axis=2), 0.0)
            hi = np.maximum(blocks.max(axis=2), 0.0)
            scale = (hi - lo) / 15.0
            zero = np.clip(np.round(-lo / np.where(scale == 0, 1, scale)), 0, 15)
        scale = np.where(scale == 0, 1.0, scale).astype(scale_dtype)             # what the kernel will read
        codes = np.clip(np.round(blocks / scale.astype(np.float32)[..., None]) + zero[..., None], 0, 15).astype(np.uint8)
        band = slice(start, start + rows.shape[0])
        packed[band] = codes[..., 0::2] | (codes[..., 1::2] << 4)
        scales[band] = scale
        zero = zero.astype(np.uint8)
        if nb % 2:
            zero = np.concatenate([zero, np.zeros((zero.shape[0], 1), np.uint8)], axis=1)
        zps[band] = zero[:, 0::2] | (zero[:, 1::2] << 4)
    return packed, scales.reshape(-1), (None if p.symmetric else zps.reshape(-1))


def dequantize(packed: np.ndarray, scales: np.ndarray, zero_points: np.ndarray | None, k: int) -> np.ndarray:
    """Inverse of `quantize`: -> W [K, N] float32."""
    n, nb, half = packed.shape
    codes = np.empty((n, nb, half * 2), np.float32)
    codes[..., 0::2] = packed & 0x0F
    codes[..., 1::2] = packed >> 4
    if zero_points is None:
        zero = np.full((n, nb), 8.0, np.float32)
    else:
        z = zero_points.reshape(n, -1)
        zero = np.stack([z & 0x0F, z >> 4], axis=2).reshape(n, -1)[:, :nb].astype(np.float32)
    w = (codes - zero[..., None]) * scales.reshape(n, nb).astype(np.float32)[..., None]   # [N, nb, bs]
    return w.reshape(n, -1)[:, :k].T
