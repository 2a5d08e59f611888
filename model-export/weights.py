"""Model configurations and the weights that fill them.

Every tensor is produced in the graph's storage layout: matrices are [in, out] (so the graph
multiplies `x @ W`), and the rows of q/k projections follow the half-split rotary layout
(Hugging Face / GenAI, rotary_interleaved=0). Two sources exist:

- `Llama2cWeights`: a llama2.c legacy (v0) checkpoint, converted from [out, in] interleaved.
- `RandomWeights`: seeded random weights; each tensor has its own stream, so a tensor can be
  regenerated alone (reference.py does) and chunking never changes the bytes.
"""
from __future__ import annotations

import dataclasses
import struct
from typing import Iterator

import numpy as np


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    context_length: int
    rms_norm_eps: float
    rope_theta: float = 10000.0
    bos_token_id: int = 1
    eos_token_id: int = 2
    pad_token_id: int = 0

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_size


PRESETS = {
    "tiny": ModelConfig(hidden_size=64, intermediate_size=172, num_layers=2, num_heads=4,
                        num_kv_heads=2, vocab_size=32000, context_length=2048, rms_norm_eps=1e-6),
    "vicuna-7b": ModelConfig(hidden_size=4096, intermediate_size=11008, num_layers=32, num_heads=32,
                             num_kv_heads=32, vocab_size=32000, context_length=2048, rms_norm_eps=1e-6),
    "vicuna-13b": ModelConfig(hidden_size=5120, intermediate_size=13824, num_layers=40, num_heads=40,
                              num_kv_heads=40, vocab_size=32000, context_length=2048, rms_norm_eps=1e-6),
}


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    fan_in: int  # 0 for norm weights (all ones)


def tensor_specs(cfg: ModelConfig) -> list[TensorSpec]:
    """All weights in file order, storage layout."""
    d, f, q, kv = cfg.hidden_size, cfg.intermediate_size, cfg.num_heads * cfg.head_size, cfg.kv_size
    specs = [TensorSpec("model.embed_tokens.weight", (cfg.vocab_size, d), 1)]  # [V, d]; unit std
    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        specs += [
            TensorSpec(p + "input_layernorm.weight", (d,), 0),
            TensorSpec(p + "self_attn.q_proj.weight", (d, q), d),       # [d, H*hd]
            TensorSpec(p + "self_attn.k_proj.weight", (d, kv), d),      # [d, KVH*hd]
            TensorSpec(p + "self_attn.v_proj.weight", (d, kv), d),      # [d, KVH*hd]
            TensorSpec(p + "self_attn.o_proj.weight", (q, d), q),       # [H*hd, d]
            TensorSpec(p + "post_attention_layernorm.weight", (d,), 0),
            TensorSpec(p + "mlp.gate_proj.weight", (d, f), d),          # [d, ffn]
            TensorSpec(p + "mlp.up_proj.weight", (d, f), d),            # [d, ffn]
            TensorSpec(p + "mlp.down_proj.weight", (f, d), f),          # [ffn, d]
        ]
    specs += [TensorSpec("model.norm.weight", (d,), 0),
              TensorSpec("lm_head.weight", (d, cfg.vocab_size), d)]    # [d, V]
    return specs


@dataclasses.dataclass(frozen=True)
class StoredTensor:
    """A tensor as the package stores it: one source tensor, or several concatenated along the last (out) axis."""
    name: str
    shape: tuple[int, ...]
    parts: tuple[int, ...]  # indices into tensor_specs(cfg), in column order


def packed_qkv_name(layer: int) -> str:
    return f"model.layers.{layer}.self_attn.qkv_proj.weight"


def stored_tensors(cfg: ModelConfig, packed_qkv: bool) -> list[StoredTensor]:
    """What the package stores, in file order. packed_qkv: each layer's q, k and v projections as one
    [d, (H + 2 KVH) hd] matrix (columns q | k | v), so a step runs one MatMul for the three, and attention takes the
    packed form (key and value left empty)."""
    specs = tensor_specs(cfg)
    stored, i = [], 0
    while i < len(specs):
        spec = specs[i]
        if packed_qkv and spec.name.endswith("self_attn.q_proj.weight"):
            q, k, v = specs[i:i + 3]
            assert k.name.endswith("k_proj.weight") and v.name.endswith("v_proj.weight"), (q.name, k.name, v.name)
            layer = int(spec.name.split(".")[2])
            stored.append(StoredTensor(packed_qkv_name(layer), (q.shape[0], q.shape[1] + k.shape[1] + v.shape[1]),
                                       (i, i + 1, i + 2)))
            i += 3
            continue
        stored.append(StoredTensor(spec.name, spec.shape, (i,)))
        i += 1
    return stored


_PACK_ROWS = 1024


def stored_chunks(source, stored: StoredTensor, dtype: np.dtype) -> Iterator[np.ndarray]:
    """Flat pieces of a stored tensor (row-major): a packed one row band by row band, its parts side by side."""
    if len(stored.parts) == 1:
        yield from source.chunks(stored.parts[0], dtype)
        return
    mats = [np.concatenate(list(source.chunks(i, dtype))).reshape(source.specs[i].shape) for i in stored.parts]
    for start in range(0, stored.shape[0], _PACK_ROWS):
        yield np.concatenate([m[start:start + _PACK_ROWS] for m in mats], axis=1).reshape(-1)


# A fixed table of 65536 standard-normal samples: a weight is table[16 random bits] * std.
# Drawing 16-bit indices and looking them up is ~10x faster than standard_normal, which keeps
# a 13B export I/O-bound; the values are still normal-distributed (|x| <= ~4.3).
_NORMAL_TABLE = np.random.default_rng(20240229).standard_normal(65536).astype(np.float32)
_CHUNK_ELEMENTS = 1 << 24


class RandomWeights:
    """normal(0, 1/sqrt(fan_in)) matrices, unit-std embedding, norms = 1."""

    def __init__(self, cfg: ModelConfig, seed: int):
        self.cfg, self.seed = cfg, seed
        self.specs = tensor_specs(cfg)

    def chunks(self, index: int, dtype: np.dtype) -> Iterator[np.ndarray]:
        """Flat pieces of tensor `index` (row-major, storage layout) in `dtype`."""
        spec = self.specs[index]
        total = int(np.prod(spec.shape))
        if spec.fan_in == 0:
            yield np.ones(total, dtype)
            return
        table = (_NORMAL_TABLE * np.float32(1.0 / np.sqrt(spec.fan_in))).astype(dtype)
        bits = np.random.default_rng([self.seed, index]).bit_generator
        for start in range(0, total, _CHUNK_ELEMENTS):
            n = min(_CHUNK_ELEMENTS, total - start)
            idx = bits.random_raw((n + 3) // 4).view("<u2")[:n]  # 4 indices per 64 random bits
            yield table[idx]

    def tensor(self, index: int, dtype=np.float32) -> np.ndarray:
        return np.concatenate(list(self.chunks(index, np.dtype(dtype)))).reshape(self.specs[index].shape)


def interleaved_to_half_split(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Rows [out, in] of a q/k projection: per head, pair (2i, 2i+1) -> (i, i + hd/2)."""
    out, inp = w.shape
    return w.reshape(n_heads, out // n_heads // 2, 2, inp).transpose(0, 2, 1, 3).reshape(out, inp)


def read_llama2c(path: str) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """Legacy v0 llama2.c checkpoint -> (config, tensors in llama2.c layout [out, in], interleaved)."""
    with open(path, "rb") as f:
        dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack("<7i", f.read(28))
        data = np.frombuffer(f.read(), dtype="<f4")
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // n_heads
    kv_dim = n_kv_heads * hd
    shapes = [
        ("token_embedding", (vocab, dim)), ("rms_att", (n_layers, dim)),
        ("wq", (n_layers, dim, dim)), ("wk", (n_layers, kv_dim, dim)), ("wv", (n_layers, kv_dim, dim)),
        ("wo", (n_layers, dim, dim)), ("rms_ffn", (n_layers, dim)),
        ("w1", (n_layers, hidden, dim)), ("w2", (n_layers, dim, hidden)), ("w3", (n_layers, hidden, dim)),
        ("rms_final", (dim,)), ("freq_cis_real", (seq_len, hd // 2)), ("freq_cis_imag", (seq_len, hd // 2)),
    ]
    if not shared:
        shapes.append(("wcls", (vocab, dim)))
    tensors, offset = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        if offset + n > data.size:
            raise ValueError(f"{path}: truncated at tensor {name} (need {offset + n} floats, have {data.size})")
        tensors[name] = data[offset:offset + n].reshape(shape)
        offset += n
    if offset != data.size:
        raise ValueError(f"{path}: {data.size - offset} trailing floats; not a legacy v0 checkpoint?")
    if shared:
        tensors["wcls"] = tensors["token_embedding"]
    cfg = ModelConfig(hidden_size=dim, intermediate_size=hidden, num_layers=n_layers, num_heads=n_heads,
                      num_kv_heads=n_kv_heads, vocab_size=vocab, context_length=seq_len, rms_norm_eps=1e-5)
    return cfg, tensors


class Llama2cWeights:
    """A llama2.c checkpoint converted to storage layout."""

    def __init__(self, path: str):
        self.cfg, t = read_llama2c(path)
        self.specs = tensor_specs(self.cfg)
        c = self.cfg
        by_name = {"model.embed_tokens.weight": t["token_embedding"],
                   "model.norm.weight": t["rms_final"],
                   "lm_head.weight": t["wcls"].T}
        for i in range(c.num_layers):
            p = f"model.layers.{i}."
            by_name.update({
                p + "input_layernorm.weight": t["rms_att"][i],
                p + "self_attn.q_proj.weight": interleaved_to_half_split(t["wq"][i], c.num_heads).T,
                p + "self_attn.k_proj.weight": interleaved_to_half_split(t["wk"][i], c.num_kv_heads).T,
                p + "self_attn.v_proj.weight": t["wv"][i].T,
                p + "self_attn.o_proj.weight": t["wo"][i].T,
                p + "post_attention_layernorm.weight": t["rms_ffn"][i],
                p + "mlp.gate_proj.weight": t["w1"][i].T,
                p + "mlp.up_proj.weight": t["w3"][i].T,
                p + "mlp.down_proj.weight": t["w2"][i].T,
            })
        self._by_name = by_name

    def chunks(self, index: int, dtype: np.dtype) -> Iterator[np.ndarray]:
        spec = self.specs[index]
        w = self._by_name[spec.name]
        assert w.shape == spec.shape, (spec.name, w.shape, spec.shape)
        yield np.ascontiguousarray(w, dtype=dtype).reshape(-1)
