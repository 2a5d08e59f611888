#!/usr/bin/python3
"""Write a FastChat-style delta: delta = target - base, tensor by tensor (float32 safetensors).

  make_delta.py --target HF_DIR --base HF_DIR --out DELTA_DIR
  make_delta.py --target HF_DIR --make-base BASE_DIR --seed N [--base-vocab N] --out DELTA_DIR

--make-base first writes a synthetic base: the target plus seeded noise (std 0.1 of each tensor's std),
its vocab rows cut to --base-vocab (as LLaMA's 32000 vs Vicuna v0's 32001). A base smaller than the
target is subtracted from the target's first rows; the extra rows are the target's own (FastChat's rule).
config.json, generation_config.json and tokenizer.model come from the target.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hf_checkpoint import HfCheckpoint  # noqa: E402
from safetensors_file import SafetensorsFile, write_safetensors  # noqa: E402

_VOCAB_TENSORS = ("model.embed_tokens.weight", "lm_head.weight")


def names_of(folder: str) -> list[str]:
    return [n for f in sorted(os.listdir(folder)) if f.endswith(".safetensors")
            for n in SafetensorsFile(os.path.join(folder, f)).names]


def copy_metadata(src: str, dst: str, vocab: int | None = None) -> None:
    os.makedirs(dst, exist_ok=True)
    for name in ("config.json", "generation_config.json", "tokenizer.model"):
        if os.path.exists(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
    if vocab:
        with open(os.path.join(dst, "config.json")) as f:
            config = json.load(f)
        config["vocab_size"] = vocab
        with open(os.path.join(dst, "config.json"), "w") as f:
            json.dump(config, f, indent=2)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True)
    ap.add_argument("--out", required=True)
    base = ap.add_mutually_exclusive_group(required=True)
    base.add_argument("--base")
    base.add_argument("--make-base", metavar="DIR")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base-vocab", type=int)
    args = ap.parse_args(argv)

    target = HfCheckpoint(args.target)
    names = names_of(args.target)
    if args.make_base:
        rng = np.random.default_rng(args.seed)
        base_tensors = {}
        for name in names:
            t = target.tensor(name)
            b = t + rng.standard_normal(t.shape).astype(np.float32) * np.float32(0.1 * (t.std() or 1.0))
            if args.base_vocab and name in _VOCAB_TENSORS:
                b = b[:args.base_vocab]
            base_tensors[name] = np.ascontiguousarray(b, np.float32)
        copy_metadata(args.target, args.make_base, args.base_vocab)
        write_safetensors(os.path.join(args.make_base, "model.safetensors"), base_tensors)
        args.base = args.make_base

    base_ckpt = HfCheckpoint(args.base)
    delta = {}
    for name in names:
        d = np.array(target.tensor(name), np.float32)
        b = base_ckpt.tensor(name)
        d[tuple(slice(0, n) for n in b.shape)] -= b
        delta[name] = d
    copy_metadata(args.target, args.out)
    write_safetensors(os.path.join(args.out, "model.safetensors"), delta)


if __name__ == "__main__":
    main(sys.argv[1:])
