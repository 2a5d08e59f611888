#!/usr/bin/python3
"""Independent numpy forward pass (llama2.c run.c algorithm, one token at a time, float64).

It shares nothing with llama_graph.py: it reads llama2.c checkpoints itself, and for random
configs it takes the seeded tensors from weights.RandomWeights, turns them back into llama2.c's
layout ([out, in], interleaved rotary pairs) and applies rotary the way run.c does. Hugging Face
folders are read through safetensors_file / hf_checkpoint's file reader (tensors by their own
names); the layout change and the delta sum are done here.

  reference.py (--from-llama2c FILE | --config NAME --seed N [--vocab-size N] [--context-length N]
                | --from-hf DIR | --base DIR --delta DIR)
               (--prompt-ids 1,2,3 | --prompts-file FILE) [--max-tokens N] [--logits]

Prints one JSON line per prompt: {"ids": [generated ids; ends with eos if produced]
[, "logits": [[vocab floats] per generated id: the logits that chose it]]}.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import struct
import sys

import numpy as np

from weights import PRESETS, RandomWeights


@dataclasses.dataclass
class Llama:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab: int
    eps: float
    theta: float
    eos: int
    w: dict  # llama2.c names and layout: wq [L, dim, dim] ([out, in]), rms_att [L, dim], ...

    @property
    def head_size(self) -> int:
        return self.dim // self.n_heads


def load_llama2c(path: str) -> Llama:
    with open(path, "rb") as f:
        dim, hidden, L, H, KVH, vocab, seq_len = struct.unpack("<7i", f.read(28))
        floats = np.frombuffer(f.read(), "<f4").astype(np.float64)
    hs, V = dim // H, abs(vocab)
    kv = KVH * hs
    order = [("token_embedding", (V, dim)), ("rms_att", (L, dim)), ("wq", (L, dim, dim)),
             ("wk", (L, kv, dim)), ("wv", (L, kv, dim)), ("wo", (L, dim, dim)), ("rms_ffn", (L, dim)),
             ("w1", (L, hidden, dim)), ("w2", (L, dim, hidden)), ("w3", (L, hidden, dim)),
             ("rms_final", (dim,)), ("freq_cis_real", (seq_len, hs // 2)), ("freq_cis_imag", (seq_len, hs // 2))]
    if vocab < 0:
        order.append(("wcls", (V, dim)))
    w, at = {}, 0
    for name, shape in order:
        n = int(np.prod(shape))
        w[name] = floats[at:at + n].reshape(shape)
        at += n
    w.setdefault("wcls", w["token_embedding"])
    return Llama(dim, L, H, KVH, V, 1e-5, 10000.0, 2, w)


def half_split_to_interleaved(w_out_in: np.ndarray, n_heads: int) -> np.ndarray:
    """Per head, rows (i, i + hd/2) -> (2i, 2i+1): undo the exporter's q/k permutation."""
    out, inp = w_out_in.shape
    half = out // n_heads // 2
    result = np.empty_like(w_out_in)
    for h in range(n_heads):
        base = h * 2 * half
        for i in range(half):
            result[base + 2 * i] = w_out_in[base + i]
            result[base + 2 * i + 1] = w_out_in[base + half + i]
    return result


def load_random(name: str, seed: int, vocab_size: int | None, context_length: int | None) -> Llama:
    cfg = PRESETS[name]
    if vocab_size:
        cfg = dataclasses.replace(cfg, vocab_size=vocab_size)
    if context_length:
        cfg = dataclasses.replace(cfg, context_length=context_length)
    src = RandomWeights(cfg, seed)
    t = {spec.name: src.tensor(i).astype(np.float64) for i, spec in enumerate(src.specs)}
    layers = [f"model.layers.{i}." for i in range(cfg.num_layers)]
    stack = lambda suffix, f=lambda a: a.T: np.stack([f(t[p + suffix]) for p in layers])  # noqa: E731
    w = {
        "token_embedding": t["model.embed_tokens.weight"],
        "rms_att": stack("input_layernorm.weight", lambda a: a),
        "wq": stack("self_attn.q_proj.weight", lambda a: half_split_to_interleaved(a.T, cfg.num_heads)),
        "wk": stack("self_attn.k_proj.weight", lambda a: half_split_to_interleaved(a.T, cfg.num_kv_heads)),
        "wv": stack("self_attn.v_proj.weight"),
        "wo": stack("self_attn.o_proj.weight"),
        "rms_ffn": stack("post_attention_layernorm.weight", lambda a: a),
        "w1": stack("mlp.gate_proj.weight"),
        "w2": stack("mlp.down_proj.weight"),
        "w3": stack("mlp.up_proj.weight"),
        "rms_final": t["model.norm.weight"],
        "wcls": t["lm_head.weight"].T,
    }
    return Llama(cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads, cfg.vocab_size,
                 cfg.rms_norm_eps, cfg.rope_theta, cfg.eos_token_id, w)


def load_hf(folder: str, base_folder: str | None = None) -> Llama:
    """Hugging Face LlamaForCausalLM folder ([out, in], half-split q/k); with base_folder, folder is a delta."""
    from hf_checkpoint import HfCheckpoint

    with open(f"{folder}/config.json") as f:
        c = json.load(f)
    H, L = c["num_attention_heads"], c["num_hidden_layers"]
    KVH = c.get("num_key_value_heads") or H
    ckpt = HfCheckpoint(folder)
    base = HfCheckpoint(base_folder) if base_folder else None

    def get(name: str) -> np.ndarray:
        t = ckpt.tensor(name).astype(np.float64)
        if base is not None:
            b_name = name if base.has(name) or name != "lm_head.weight" else "model.embed_tokens.weight"
            b = base.tensor(b_name)
            t[:b.shape[0], ...] += b  # base rows added in, the delta's extra vocab rows kept
        return t

    layers = [f"model.layers.{i}." for i in range(L)]
    stack = lambda suffix, f=lambda a: a: np.stack([f(get(p + suffix)) for p in layers])  # noqa: E731
    tied = c.get("tie_word_embeddings", False) or not ckpt.has("lm_head.weight")
    w = {
        "token_embedding": get("model.embed_tokens.weight"),
        "rms_att": stack("input_layernorm.weight"),
        "wq": stack("self_attn.q_proj.weight", lambda a: half_split_to_interleaved(a, H)),
        "wk": stack("self_attn.k_proj.weight", lambda a: half_split_to_interleaved(a, KVH)),
        "wv": stack("self_attn.v_proj.weight"),
        "wo": stack("self_attn.o_proj.weight"),
        "rms_ffn": stack("post_attention_layernorm.weight"),
        "w1": stack("mlp.gate_proj.weight"),
        "w2": stack("mlp.down_proj.weight"),
        "w3": stack("mlp.up_proj.weight"),
        "rms_final": get("model.norm.weight"),
    }
    w["wcls"] = w["token_embedding"] if tied else get("lm_head.weight")
    eos = c.get("eos_token_id", 2)
    try:
        with open(f"{folder}/generation_config.json") as f:
            eos = json.load(f).get("eos_token_id", eos)
    except FileNotFoundError:
        pass
    eos = eos[0] if isinstance(eos, list) else eos
    # transformers 5 writes rope_parameters {"rope_type": "default", "rope_theta": ...}; older ones rope_theta
    theta = (c.get("rope_parameters") or {}).get("rope_theta", c.get("rope_theta", 10000.0))
    return Llama(c["hidden_size"], L, H, KVH, c["vocab_size"], c.get("rms_norm_eps", 1e-6), float(theta), eos, w)


def rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return weight * (x / np.sqrt(np.mean(x * x) + eps))


def rope_interleaved(vec: np.ndarray, pos: int, head_size: int, theta: float) -> None:
    """run.c: rotate pairs (i, i+1) by pos * theta^(-(i % hs) / hs), in place."""
    for i in range(0, vec.size, 2):
        freq = 1.0 / theta ** ((i % head_size) / head_size)
        c, s = np.cos(pos * freq), np.sin(pos * freq)
        v0, v1 = vec[i], vec[i + 1]
        vec[i], vec[i + 1] = v0 * c - v1 * s, v0 * s + v1 * c


class Session:
    def __init__(self, m: Llama):
        self.m = m
        kv_dim = m.n_kv_heads * m.head_size
        self.key_cache = [np.zeros((0, kv_dim)) for _ in range(m.n_layers)]    # [pos, kv_dim] per layer
        self.value_cache = [np.zeros((0, kv_dim)) for _ in range(m.n_layers)]  # [pos, kv_dim] per layer

    def forward(self, token: int, pos: int) -> np.ndarray:
        m, w, hs = self.m, self.m.w, self.m.head_size
        kv_mul = m.n_heads // m.n_kv_heads
        x = w["token_embedding"][token].copy()                                 # [dim]
        for l in range(m.n_layers):
            xb = rmsnorm(x, w["rms_att"][l], m.eps)                            # [dim]
            q = w["wq"][l] @ xb                                                # [dim]
            k = w["wk"][l] @ xb                                                # [kv_dim]
            v = w["wv"][l] @ xb                                                # [kv_dim]
            rope_interleaved(q, pos, hs, m.theta)
            rope_interleaved(k, pos, hs, m.theta)
            self.key_cache[l] = np.vstack([self.key_cache[l], k])              # [pos+1, kv_dim]
            self.value_cache[l] = np.vstack([self.value_cache[l], v])
            out = np.empty(m.dim)                                              # [dim]
            for h in range(m.n_heads):
                kvh = h // kv_mul
                keys = self.key_cache[l][:, kvh * hs:(kvh + 1) * hs]           # [pos+1, hs]
                vals = self.value_cache[l][:, kvh * hs:(kvh + 1) * hs]         # [pos+1, hs]
                att = keys @ q[h * hs:(h + 1) * hs] / np.sqrt(hs)              # [pos+1]
                att = np.exp(att - att.max())
                out[h * hs:(h + 1) * hs] = (att / att.sum()) @ vals
            x = x + w["wo"][l] @ out
            xb = rmsnorm(x, w["rms_ffn"][l], m.eps)
            gate = w["w1"][l] @ xb                                             # [hidden]
            hb = gate / (1.0 + np.exp(-gate)) * (w["w3"][l] @ xb)              # [hidden]
            x = x + w["w2"][l] @ hb
        return w["wcls"] @ rmsnorm(x, w["rms_final"], m.eps)                    # [vocab]


def generate(m: Llama, prompt: list[int], max_tokens: int) -> tuple[list[int], list[list[float]]]:
    s = Session(m)
    for pos, token in enumerate(prompt):
        logits = s.forward(token, pos)
    ids, all_logits = [], []
    while True:
        next_id = int(np.argmax(logits))
        ids.append(next_id)
        all_logits.append(logits.tolist())
        if next_id == m.eos or len(ids) >= max_tokens:
            return ids, all_logits
        logits = s.forward(next_id, len(prompt) + len(ids) - 1)


def add_source_arguments(ap: argparse.ArgumentParser) -> None:
    """The model a script runs: a llama2.c checkpoint, a random config, a Hugging Face folder, or base + delta."""
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-llama2c", metavar="FILE")
    src.add_argument("--config", choices=sorted(PRESETS))
    src.add_argument("--from-hf", metavar="DIR")
    src.add_argument("--delta", metavar="DIR", help="Hugging Face delta folder; needs --base")
    ap.add_argument("--base", metavar="DIR")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab-size", type=int)
    ap.add_argument("--context-length", type=int)


def load_source(ap: argparse.ArgumentParser, args: argparse.Namespace) -> Llama:
    """The model of add_source_arguments' arguments."""
    if bool(args.base) != bool(args.delta):
        ap.error("--base and --delta go together")
    if args.from_llama2c:
        return load_llama2c(args.from_llama2c)
    if args.from_hf or args.delta:
        return load_hf(args.from_hf or args.delta, args.base)
    return load_random(args.config, args.seed, args.vocab_size, args.context_length)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(ap)
    prompts = ap.add_mutually_exclusive_group(required=True)
    prompts.add_argument("--prompt-ids", help="comma-separated token ids")
    prompts.add_argument("--prompts-file", help="one comma-separated id list per line")
    ap.add_argument("--max-tokens", type=int, default=20)
    ap.add_argument("--logits", action="store_true", help="also print the logits behind each id")
    args = ap.parse_args(argv)

    m = load_source(ap, args)
    if args.prompt_ids:
        lines = [args.prompt_ids]
    else:
        with open(args.prompts_file) as f:
            lines = [line.strip() for line in f if line.strip()]
    for line in lines:
        ids, logits = generate(m, [int(t) for t in line.split(",")], args.max_tokens)
        result = {"ids": ids}
        if args.logits:
            result["logits"] = logits
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
