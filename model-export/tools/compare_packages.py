#!/usr/bin/python3
"""Compare two packages' weights numerically (initializers, inline or in model.onnx.data).

  compare_packages.py PKG_A PKG_B [--rtol 1e-6] [--atol 0]

Every initializer must exist in both with the same shape and type; float tensors pass when
max |a - b| <= atol + rtol * max |b|, integer tensors when equal. Prints one JSON line
{"tensors": n, "worst": name, "max_abs_diff": x, "max_rel_diff": y, "ok": bool}; exit 1 when not ok.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def initializers(package: str) -> dict[str, np.ndarray]:
    model = onnx.load(os.path.join(package, "model.onnx"), load_external_data=True)
    return {t.name: numpy_helper.to_array(t, base_dir=package) for t in model.graph.initializer}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--atol", type=float, default=0.0)
    args = ap.parse_args(argv)
    a, b = initializers(args.a), initializers(args.b)
    problems = [f"only in {args.a}: {n}" for n in sorted(set(a) - set(b))] + \
               [f"only in {args.b}: {n}" for n in sorted(set(b) - set(a))]
    worst, worst_abs, worst_rel = None, 0.0, 0.0
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            problems.append(f"{name}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
            continue
        if not np.issubdtype(x.dtype, np.floating):
            if not np.array_equal(x, y):
                problems.append(f"{name}: integer tensors differ")
            continue
        diff = float(np.abs(x.astype(np.float64) - y).max()) if x.size else 0.0
        scale = float(np.abs(y).max()) if y.size else 0.0
        rel = diff / scale if scale else diff
        if diff > args.atol + args.rtol * scale:
            problems.append(f"{name}: max |diff| {diff:.3g} (max |value| {scale:.3g})")
        if diff >= worst_abs:
            worst, worst_abs = name, diff
        worst_rel = max(worst_rel, rel)
    for p in problems[:20]:
        print(p, file=sys.stderr)
    if len(problems) > 20:
        print(f"... {len(problems) - 20} more", file=sys.stderr)
    print(json.dumps({"tensors": len(set(a) & set(b)), "worst": worst, "max_abs_diff": worst_abs,
                      "max_rel_diff": worst_rel, "ok": not problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
