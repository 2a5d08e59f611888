#!/usr/bin/python3
"""llama2.c legacy (v0) checkpoint -> Hugging Face LlamaForCausalLM folder, the way Hugging Face converts
Meta checkpoints (convert_llama_weights_to_hf.py): q/k rows permuted from interleaved rotary pairs to
half-split, Linear weights [out, in], safetensors + config.json + generation_config.json.

  llama2c_to_hf.py stories260K.bin --out DIR [--dtype F32|F16|BF16] [--shards N] [--tokenizer FILE]
                   [--untied]   (write lm_head.weight even when llama2.c shares it with the embedding)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from safetensors_file import write_safetensors  # noqa: E402
from weights import read_llama2c  # noqa: E402


def permute(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Hugging Face's permute: w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)."""
    dim1, dim2 = w.shape
    return w.reshape(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(0, 2, 1, 3).reshape(dim1, dim2)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default="F32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--tokenizer", metavar="FILE")
    ap.add_argument("--untied", action="store_true")
    args = ap.parse_args(argv)

    cfg, t = read_llama2c(args.checkpoint)
    with open(args.checkpoint, "rb") as f:
        tied = int.from_bytes(f.read(24)[20:24], "little", signed=True) > 0 and not args.untied
    tensors = {"model.embed_tokens.weight": t["token_embedding"]}
    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        tensors.update({
            p + "self_attn.q_proj.weight": permute(t["wq"][i], cfg.num_heads),
            p + "self_attn.k_proj.weight": permute(t["wk"][i], cfg.num_kv_heads),
            p + "self_attn.v_proj.weight": t["wv"][i],
            p + "self_attn.o_proj.weight": t["wo"][i],
            p + "mlp.gate_proj.weight": t["w1"][i],
            p + "mlp.down_proj.weight": t["w2"][i],
            p + "mlp.up_proj.weight": t["w3"][i],
            p + "input_layernorm.weight": t["rms_att"][i],
            p + "post_attention_layernorm.weight": t["rms_ffn"][i],
        })
    tensors["model.norm.weight"] = t["rms_final"]
    if not tied:
        tensors["lm_head.weight"] = t["wcls"]
    tensors = {k: np.ascontiguousarray(v, np.float16 if args.dtype == "F16" else np.float32) for k, v in tensors.items()}

    os.makedirs(args.out, exist_ok=True)
    names = list(tensors)
    per_shard = -(-len(names) // args.shards)
    weight_map = {}
    for s in range(args.shards):
        part = names[s * per_shard:(s + 1) * per_shard]
        file = "model.safetensors" if args.shards == 1 else f"model-{s + 1:05d}-of-{args.shards:05d}.safetensors"
        write_safetensors(os.path.join(args.out, file), {k: tensors[k] for k in part},
                          bf16=set(part) if args.dtype == "BF16" else set(), metadata={"format": "pt"})
        weight_map.update({k: file for k in part})
    if args.shards > 1:
        with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)

    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": cfg.hidden_size, "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads, "max_position_embeddings": cfg.context_length,
        "rms_norm_eps": cfg.rms_norm_eps, "rope_theta": cfg.rope_theta, "vocab_size": cfg.vocab_size,
        "tie_word_embeddings": tied, "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[args.dtype],
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}, f, indent=2)
    if args.tokenizer:
        shutil.copyfile(args.tokenizer, os.path.join(args.out, "tokenizer.model"))


if __name__ == "__main__":
    main(sys.argv[1:])
