#!/usr/bin/python3
"""Write a variant-A model package: model.onnx [+ model.onnx.data], genai_config.json [, tokenizer.model].

  export.py --from-llama2c stories260K.bin --out DIR [--dtype float32|float16]
  export.py --config tiny|vicuna-7b|vicuna-13b --seed N --out DIR [--dtype ...] [--vocab-size N]
            [--context-length N] [--tokenizer tokenizer.model]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time

import numpy as np
from onnx import TensorProto, helper, mapping

from llama_graph import build_model
from weights import PRESETS, Llama2cWeights, ModelConfig, RandomWeights

EXTERNAL_THRESHOLD_BYTES = 100 * 1024 * 1024
DATA_FILE = "model.onnx.data"
ALIGNMENT = 4096  # page-aligned offsets let ORT map external data instead of reading it


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-llama2c", metavar="FILE", help="llama2.c legacy (v0) checkpoint")
    src.add_argument("--config", choices=sorted(PRESETS), help="random weights with these shapes")
    ap.add_argument("--seed", type=int, default=0, help="random weights seed (default 0)")
    ap.add_argument("--out", required=True, help="package folder (created)")
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    ap.add_argument("--vocab-size", type=int, help="override vocab (random configs)")
    ap.add_argument("--context-length", type=int, help="override context length (random configs)")
    ap.add_argument("--tokenizer", metavar="FILE", help="SentencePiece model copied as tokenizer.model")
    return ap.parse_args(argv)


def sentencepiece_vocab_size(path: str) -> int:
    try:
        import sentencepiece
    except ImportError as e:
        raise SystemExit(f"--tokenizer needs the sentencepiece module (python3-sentencepiece): {e}")
    return sentencepiece.SentencePieceProcessor(model_file=path).get_piece_size()


def resolve_source(args: argparse.Namespace):
    if args.from_llama2c:
        if args.vocab_size or args.context_length:
            raise SystemExit("--vocab-size/--context-length apply to --config only")
        return Llama2cWeights(args.from_llama2c)
    cfg = PRESETS[args.config]
    vocab = args.vocab_size or (sentencepiece_vocab_size(args.tokenizer) if args.tokenizer else None)
    if vocab:
        cfg = dataclasses.replace(cfg, vocab_size=vocab)
    if args.context_length:
        cfg = dataclasses.replace(cfg, context_length=args.context_length)
    return RandomWeights(cfg, args.seed)


def write_weights(source, dtype: np.dtype, out_dir: str) -> dict[str, TensorProto]:
    """Stream every tensor; external data above the threshold, inline below."""
    total = sum(int(np.prod(s.shape)) for s in source.specs) * dtype.itemsize
    onnx_dtype = mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(dtype)]
    protos: dict[str, TensorProto] = {}
    if total <= EXTERNAL_THRESHOLD_BYTES:
        for i, spec in enumerate(source.specs):
            data = np.concatenate(list(source.chunks(i, dtype)))
            protos[spec.name] = helper.make_tensor(spec.name, onnx_dtype, spec.shape, data.tobytes(), raw=True)
        return protos

    started = time.monotonic()
    with open(os.path.join(out_dir, DATA_FILE), "wb") as f:
        for i, spec in enumerate(source.specs):
            pad = -f.tell() % ALIGNMENT
            f.write(b"\0" * pad)
            offset = f.tell()
            for chunk in source.chunks(i, dtype):
                f.write(memoryview(chunk))
            length = f.tell() - offset
            t = TensorProto(name=spec.name, data_type=onnx_dtype, dims=spec.shape,
                            data_location=TensorProto.EXTERNAL)
            for key, value in (("location", DATA_FILE), ("offset", str(offset)), ("length", str(length))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            protos[spec.name] = t
            print(f"[{i + 1}/{len(source.specs)}] {spec.name} {list(spec.shape)} "
                  f"{f.tell() / 1e9:.2f}/{total / 1e9:.2f} GB {time.monotonic() - started:.0f}s",
                  file=sys.stderr, flush=True)
    return protos


def genai_config(cfg: ModelConfig) -> dict:
    return {
        "model": {
            "type": "llama", "bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id,
            "pad_token_id": cfg.pad_token_id, "context_length": cfg.context_length, "vocab_size": cfg.vocab_size,
            "decoder": {
                "filename": "model.onnx", "head_size": cfg.head_size, "hidden_size": cfg.hidden_size,
                "num_attention_heads": cfg.num_heads, "num_hidden_layers": cfg.num_layers,
                "num_key_value_heads": cfg.num_kv_heads,
                "session_options": {"provider_options": []},
                "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                           "past_key_names": "past_key_values.%d.key",
                           "past_value_names": "past_key_values.%d.value"},
                "outputs": {"logits": "logits", "present_key_names": "present.%d.key",
                            "present_value_names": "present.%d.value"},
                "rms_norm_eps": cfg.rms_norm_eps, "rope_theta": cfg.rope_theta,
            },
        },
        "search": {"max_length": cfg.context_length, "past_present_share_buffer": True, "do_sample": False,
                   "temperature": 1.0, "top_k": 50, "top_p": 1.0},
    }


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    dtype = np.dtype(args.dtype)
    source = resolve_source(args)
    os.makedirs(args.out, exist_ok=True)
    for stale in ("model.onnx", DATA_FILE, "tokenizer.model"):
        if os.path.exists(os.path.join(args.out, stale)):
            os.remove(os.path.join(args.out, stale))

    weights = write_weights(source, dtype, args.out)
    model = build_model(source.cfg, dtype, weights)
    with open(os.path.join(args.out, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    with open(os.path.join(args.out, "genai_config.json"), "w") as f:
        json.dump(genai_config(source.cfg), f, indent=2)
        f.write("\n")
    if args.tokenizer:
        shutil.copyfile(args.tokenizer, os.path.join(args.out, "tokenizer.model"))


if __name__ == "__main__":
    main(sys.argv[1:])
