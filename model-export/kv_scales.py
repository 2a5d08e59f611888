#!/usr/bin/python3
"""Calibrate an int8 KV cache: each layer's key and value dequantization scale, for export.py --kv-scales.

Runs the prompts through reference.py's numpy forward pass (keys after rotary, as PagedAttention stores them) and
takes, per layer, the largest |key| and |value| seen; the scale maps it to 127 (times --margin). A symmetric scale per
layer and kind is what PagedAttention's PER_TENSOR k_scale and v_scale take.

  kv_scales.py (--from-llama2c FILE | --config NAME --seed N [--vocab-size N] | --from-hf DIR | --base DIR --delta DIR)
               (--prompts-file FILE | --random-prompts N [--prompt-length L] [--prompt-seed S])
               [--margin M] --out scales.json

--prompts-file: one comma-separated id list per line (reference.py's format). --random-prompts: N prompts of L ids
drawn uniformly from the vocabulary (for random-weight configs, whose activations do not depend on real text).
Writes {"key": [scale per layer], "value": [...], "max_abs": {"key": [...], "value": [...]}, "tokens": n}.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from reference import Session, add_source_arguments, load_source

INT8_MAX = 127


def max_abs(m, prompts: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per layer, the largest |key| and |value| any prompt's tokens put into the cache."""
    keys, values = np.zeros(m.n_layers), np.zeros(m.n_layers)
    for prompt in prompts:
        s = Session(m)
        for pos, token in enumerate(prompt):
            s.forward(token, pos)
        for layer in range(m.n_layers):
            keys[layer] = max(keys[layer], float(np.abs(s.key_cache[layer]).max()))
            values[layer] = max(values[layer], float(np.abs(s.value_cache[layer]).max()))
    return keys, values


def scales(keys: np.ndarray, values: np.ndarray, margin: float) -> dict:
    if np.any(keys <= 0) or np.any(values <= 0):
        raise ValueError("a layer's keys or values were all zero: calibrate on more tokens")
    return {"key": [float(k * margin / INT8_MAX) for k in keys], "value": [float(v * margin / INT8_MAX) for v in values],
            "max_abs": {"key": [float(k) for k in keys], "value": [float(v) for v in values]}}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(ap)
    prompts = ap.add_mutually_exclusive_group(required=True)
    prompts.add_argument("--prompts-file", help="one comma-separated id list per line")
    prompts.add_argument("--random-prompts", type=int, metavar="N", help="N prompts of random ids")
    ap.add_argument("--prompt-length", type=int, default=64)
    ap.add_argument("--prompt-seed", type=int, default=1)
    ap.add_argument("--margin", type=float, default=1.0,
                    help="scale = max |x| * margin / 127; above 1 leaves room for values larger than calibration saw")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.margin <= 0:
        ap.error("--margin must be positive")

    m = load_source(ap, args)
    if args.prompts_file:
        with open(args.prompts_file) as f:
            ids = [[int(t) for t in line.split(",")] for line in f if line.strip()]
    else:
        rng = np.random.default_rng(args.prompt_seed)
        ids = [[1] + rng.integers(3, m.vocab, args.prompt_length - 1).tolist() for _ in range(args.random_prompts)]
    if not ids:
        ap.error("no prompts to calibrate on")

    keys, values = max_abs(m, ids)
    doc = scales(keys, values, args.margin)
    doc["tokens"] = sum(len(p) for p in ids)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"{doc['tokens']} tokens: max |key| per layer {np.round(keys, 3).tolist()}, "
          f"max |value| {np.round(values, 3).tolist()} -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
