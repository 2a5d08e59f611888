"""Hugging Face LLaMA-family checkpoints (LlamaForCausalLM: Vicuna v0-v1.5, LLaMA 1/2) as weight sources.

A checkpoint folder holds config.json, weights as *.safetensors (optionally sharded with
model.safetensors.index.json) or pytorch_model*.bin (needs torch), and maybe generation_config.json
and tokenizer.model. Hugging Face stores Linear weights [out, in] and q/k rows already in the
half-split rotary layout the graph uses, so conversion is a transpose only.

Delta weights (FastChat, Vicuna v0/v1.1): target = base + delta, tensor by tensor. When the delta's
vocab is larger than the base's (v0 added tokens), the target takes the delta's shape and the base's
missing rows count as zero: base rows are added into the delta's first rows, extra rows are the delta's.
"""
from __future__ import annotations

import glob
import json
import os
from typing import Iterator

import numpy as np

from safetensors_file import SafetensorsFile
from weights import ModelConfig, tensor_specs

_CHUNK_ELEMENTS = 1 << 24

# storage name -> Hugging Face name; "T" means stored [out, in], transposed to [in, out] for MatMul.
_LAYER_TENSORS = {
    "input_layernorm.weight": ("input_layernorm.weight", False),
    "self_attn.q_proj.weight": ("self_attn.q_proj.weight", True),
    "self_attn.k_proj.weight": ("self_attn.k_proj.weight", True),
    "self_attn.v_proj.weight": ("self_attn.v_proj.weight", True),
    "self_attn.o_proj.weight": ("self_attn.o_proj.weight", True),
    "post_attention_layernorm.weight": ("post_attention_layernorm.weight", False),
    "mlp.gate_proj.weight": ("mlp.gate_proj.weight", True),
    "mlp.up_proj.weight": ("mlp.up_proj.weight", True),
    "mlp.down_proj.weight": ("mlp.down_proj.weight", True),
}


def _read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _first(value):
    return value[0] if isinstance(value, list) else value


def rope_theta(c: dict, folder: str) -> float:
    """Plain rotary only. transformers < 5 writes rope_theta (and rope_scaling: null); transformers 5 writes
    rope_parameters {"rope_type": "default", "rope_theta": ...} instead."""
    rope = c.get("rope_parameters") or {}
    if c.get("rope_scaling") or rope.get("rope_type", "default") != "default" \
            or rope.get("partial_rotary_factor", 1.0) != 1.0:
        raise SystemExit(f"{folder}/config.json: rope_scaling {c.get('rope_scaling')}, rope_parameters {rope}: "
                         "only plain rotary (rope_type default) is supported")
    return float(rope.get("rope_theta", c.get("rope_theta", 10000.0)))


def read_config(folder: str) -> tuple[ModelConfig, dict]:
    """config.json (+ generation_config.json) -> (ModelConfig, extras: tied, eos list, search defaults)."""
    c = _read_json(os.path.join(folder, "config.json"))
    archs = c.get("architectures") or ["LlamaForCausalLM"]
    if c.get("model_type", "llama") != "llama" or not any(a in ("LlamaForCausalLM", "LLaMAForCausalLM") for a in archs):
        raise SystemExit(f"{folder}/config.json: model_type {c.get('model_type')!r}, architectures {archs}: "
                         "only LLaMA-family (LlamaForCausalLM) checkpoints are supported")
    theta = rope_theta(c, folder)
    heads = c["num_attention_heads"]
    if c.get("head_dim") not in (None, c["hidden_size"] // heads):
        raise SystemExit(f"{folder}/config.json: head_dim {c['head_dim']} is not hidden_size / num_attention_heads")
    for key, plain in (("attention_bias", False), ("mlp_bias", False), ("hidden_act", "silu")):
        if c.get(key, plain) != plain:
            raise SystemExit(f"{folder}/config.json: {key} {c[key]!r} is not supported (only {plain!r})")
    gen_path = os.path.join(folder, "generation_config.json")
    gen = _read_json(gen_path) if os.path.exists(gen_path) else {}
    eos = gen.get("eos_token_id", c.get("eos_token_id", 2))
    pad = gen.get("pad_token_id", c.get("pad_token_id"))
    cfg = ModelConfig(
        hidden_size=c["hidden_size"], intermediate_size=c["intermediate_size"], num_layers=c["num_hidden_layers"],
        num_heads=heads, num_kv_heads=c.get("num_key_value_heads") or heads, vocab_size=c["vocab_size"],
        context_length=c.get("max_position_embeddings", 2048), rms_norm_eps=c.get("rms_norm_eps", 1e-6),
        rope_theta=theta,
        bos_token_id=_first(gen.get("bos_token_id", c.get("bos_token_id", 1))),
        eos_token_id=_first(eos), pad_token_id=0 if pad is None else _first(pad))
    search = {}
    for key in ("do_sample", "temperature", "top_p", "top_k"):
        if key in gen:
            search[key] = gen[key]
    if "max_length" in gen:
        search["max_length"] = min(int(gen["max_length"]), cfg.context_length)
    extras = {"tied": bool(c.get("tie_word_embeddings", False)), "eos_token_ids": eos, "search": search}
    return cfg, extras


class HfCheckpoint:
    """Tensors of one checkpoint folder by Hugging Face name, as float32 arrays [HF layout]."""

    def __init__(self, folder: str):
        self.folder = folder
        self._files: dict[str, object] = {}
        self._name_to_file: dict[str, str] = {}
        shards = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
        if shards:
            for path in shards:
                st = SafetensorsFile(path)
                self._files[path] = st
                for name in st.names:
                    self._name_to_file[name] = path
            return
        bins = sorted(glob.glob(os.path.join(folder, "pytorch_model*.bin")))
        if not bins:
            raise SystemExit(f"{folder}: no *.safetensors or pytorch_model*.bin weights")
        try:
            import torch
        except ImportError as e:
            raise SystemExit(f"{folder}: pytorch_model*.bin needs torch (apt-get install python3-torch), "
                             f"or convert the checkpoint to safetensors: {e}")
        for path in bins:
            # mmap keeps one shard's pages on disk until touched (torch >= 2.1); older torch loads the shard.
            try:
                state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
            except TypeError:
                state = torch.load(path, map_location="cpu")
            self._files[path] = state
            for name in state:
                self._name_to_file[name] = path

    def has(self, name: str) -> bool:
        return name in self._name_to_file

    def shape(self, name: str) -> tuple[int, ...]:
        f = self._files[self._name_to_file[name]]
        return f.shape(name) if isinstance(f, SafetensorsFile) else tuple(f[name].shape)

    def tensor(self, name: str) -> np.ndarray:
        if name not in self._name_to_file:
            raise KeyError(f"{self.folder}: tensor {name} not found")
        f = self._files[self._name_to_file[name]]
        if isinstance(f, SafetensorsFile):
            return f.tensor(name)
        return f[name].float().numpy()


def hf_name(storage_name: str, tied: bool) -> tuple[str, bool]:
    """Storage name -> (Hugging Face name, transpose?)."""
    if storage_name == "lm_head.weight":
        return ("model.embed_tokens.weight" if tied else "lm_head.weight"), True
    if storage_name.startswith("model.layers."):
        layer = storage_name.split(".")[2]
        suffix = storage_name[len(f"model.layers.{layer}."):]
        name, transpose = _LAYER_TENSORS[suffix]
        return f"model.layers.{layer}.{name}", transpose
    return storage_name, False  # embed_tokens, norm


def _stream(w: np.ndarray, transpose: bool, dtype: np.dtype) -> Iterator[np.ndarray]:
    """Flat row-major chunks of w (or w.T) in dtype; a transpose is done a column band at a time."""
    if not transpose:
        flat = w.reshape(-1)
        for start in range(0, flat.size, _CHUNK_ELEMENTS):
            yield np.asarray(flat[start:start + _CHUNK_ELEMENTS], dtype=dtype)
        return
    out, inp = w.shape                                                   # [out, in] -> rows of [in, out]
    band = max(1, _CHUNK_ELEMENTS // max(out, 1))
    for start in range(0, inp, band):
        yield np.ascontiguousarray(w[:, start:start + band].T, dtype=dtype).reshape(-1)


class HfWeights:
    """A Hugging Face checkpoint in storage layout, streamed tensor by tensor."""

    def __init__(self, folder: str):
        self.cfg, self.extras = read_config(folder)
        self.ckpt = HfCheckpoint(folder)
        self.specs = tensor_specs(self.cfg)
        self.tied = self.extras["tied"] or not self.ckpt.has("lm_head.weight")
        self._check_shapes()

    def _check_shapes(self) -> None:
        for spec in self.specs:
            name, transpose = hf_name(spec.name, self.tied)
            shape = self.ckpt.shape(name)
            expected = tuple(reversed(spec.shape)) if transpose else spec.shape
            if tuple(shape) != expected:
                raise SystemExit(f"{self.ckpt.folder}: {name} has shape {list(shape)}, config.json implies {list(expected)}")

    def hf_tensor(self, index: int) -> tuple[np.ndarray, bool]:
        name, transpose = hf_name(self.specs[index].name, self.tied)
        return self.ckpt.tensor(name), transpose

    def chunks(self, index: int, dtype: np.dtype) -> Iterator[np.ndarray]:
        w, transpose = self.hf_tensor(index)
        yield from _stream(w, transpose, dtype)


def apply_delta(base: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """target = base + delta; a base smaller along any axis (vocab) is zero-padded to the delta's shape."""
    if base.ndim != delta.ndim or any(b > d for b, d in zip(base.shape, delta.shape)):
        raise SystemExit(f"delta shape {list(delta.shape)} cannot hold base shape {list(base.shape)}")
    target = np.array(delta, dtype=np.float32)
    target[tuple(slice(0, n) for n in base.shape)] += base
    return target


class DeltaWeights:
    """target = base + delta in one streaming pass; the delta's config.json describes the target."""

    def __init__(self, base_folder: str, delta_folder: str):
        self.delta = HfWeights(delta_folder)
        self.base = HfCheckpoint(base_folder)
        self.base_tied = read_config(base_folder)[1]["tied"] or not self.base.has("lm_head.weight")
        self.cfg, self.extras, self.specs = self.delta.cfg, self.delta.extras, self.delta.specs

    def hf_tensor(self, index: int) -> tuple[np.ndarray, bool]:
        delta, transpose = self.delta.hf_tensor(index)
        base_name, _ = hf_name(self.specs[index].name, self.base_tied)
        return apply_delta(self.base.tensor(base_name), delta), transpose

    def chunks(self, index: int, dtype: np.dtype) -> Iterator[np.ndarray]:
        w, transpose = self.hf_tensor(index)
        yield from _stream(w, transpose, dtype)
