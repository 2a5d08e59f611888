#!/usr/bin/python3
"""Rewrite an int4 package as float: every MatMulNBits becomes MatMul over its dequantized weight.

  dequantize_int4.py INT4_PKG OUT_PKG

The result computes what the int4 graph should compute, with plain float MatMuls, so running both
in ONNX Runtime checks the MatMulNBits packing (int4.py) against the kernel's reading of it.
"""
from __future__ import annotations

import os
import shutil
import sys

import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import int4  # noqa: E402


def main(argv: list[str]) -> None:
    src, dst = argv
    model = onnx.load(os.path.join(src, "model.onnx"), load_external_data=True)
    graph = model.graph
    by_name = {t.name: t for t in graph.initializer}
    nodes, dropped = [], set()
    for node in graph.node:
        if node.op_type != "MatMulNBits":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        packed, scales = (numpy_helper.to_array(by_name[n]) for n in node.input[1:3])
        zero_points = numpy_helper.to_array(by_name[node.input[3]]) if len(node.input) > 3 and node.input[3] else None
        w = int4.dequantize(packed, scales, zero_points, attrs["K"]).astype(scales.dtype)   # [K, N]
        name = node.input[1] + "_dequantized"
        graph.initializer.append(numpy_helper.from_array(w, name))
        dropped.update(node.input[1:])
        nodes.append(helper.make_node("MatMul", [node.input[0], name], list(node.output), name=node.name + "_float"))
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [t for t in graph.initializer if t.name not in dropped]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    os.makedirs(dst, exist_ok=True)
    onnx.save(model, os.path.join(dst, "model.onnx"), save_as_external_data=model.ByteSize() > 1_500_000_000,
              location="model.onnx.data")
    for name in ("genai_config.json", "tokenizer.model"):
        if os.path.exists(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))


if __name__ == "__main__":
    main(sys.argv[1:])
