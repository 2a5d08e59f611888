#!/usr/bin/python3
"""Write the CPU twin of a paged (variant B) package, to check its graph without a GPU.

  paged_twin.py PAGED_PACKAGE OUT_DIR

Each com.microsoft.PagedAttention node becomes Unsqueeze -> GroupQueryAttention (empty past, rotary inside, the same
heads, scale and cos/sin caches) -> Squeeze; the KV cache, block table, past lengths and metadata inputs go away.
The twin computes what the paged graph computes for ONE request with no past (cumulative_sequence_lengths = [0, N]):
every other node — embedding over packed ids, norms, MLP, the LM head pruned to the last token, logits [1, V] — is
the paged graph's own, so ONNX Runtime on the CPU runs all of it. PagedAttention itself needs CUDA and is not checked.
"""
from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MS = "com.microsoft"
DROPPED_INPUTS = ("past_sequence_lengths", "block_table", "attention_metadata")


def twin(model: onnx.ModelProto, num_kv_heads: int, head_size: int) -> onnx.ModelProto:
    graph = model.graph
    kv_type = next(i.type.tensor_type.elem_type for i in graph.input if i.name.startswith("past_key_values."))
    # an int8 cache (export.py --kv-cache int8) is of a float16 graph: the twin attends over the prompt's own float16 K and V
    empty = np.zeros((1, num_kv_heads, 0, head_size), np.float32 if kv_type == TensorProto.FLOAT else np.float16)
    extra_init = [numpy_helper.from_array(empty, "twin_empty_past"),
                  numpy_helper.from_array(np.array([0], np.int64), "twin_axis0"),
                  numpy_helper.from_array(np.array([-1], np.int64), "twin_last"),
                  numpy_helper.from_array(np.array([2**62], np.int64), "twin_end"),
                  numpy_helper.from_array(np.array(1, np.int32), "twin_one_i32")]
    # seqlens_k = N - 1 ([1] int32), total_sequence_length = N (scalar int32), N = cumulative_sequence_lengths[-1]
    total = helper.make_node("Slice", ["cumulative_sequence_lengths", "twin_last", "twin_end"], ["twin_total_1"],
                             name="/twin_total_slice")
    nodes = [total,
             helper.make_node("Sub", ["twin_total_1", "twin_one_i32"], ["twin_seqlens_k"], name="/twin_seqlens_k"),
             helper.make_node("Squeeze", ["twin_total_1", "twin_axis0"], ["twin_total"], name="/twin_total")]
    count = 0
    for node in graph.node:
        if node.op_type != "PagedAttention":
            nodes.append(node)
            continue
        count += 1
        q, k, v = node.input[0], node.input[1], node.input[2]
        cos, sin = node.input[8], node.input[9]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        name = node.name
        for x in (q, k, v):
            if x:  # key and value are empty when query holds q | k | v packed; GroupQueryAttention takes that too
                nodes.append(helper.make_node("Unsqueeze", [x, "twin_axis0"], [f"{name}/{x}_3d"], name=f"{name}/unsqueeze_{x}"))
        q3, k3, v3 = (f"{name}/{x}_3d" if x else "" for x in (q, k, v))
        nodes.append(helper.make_node(
            "GroupQueryAttention",
            [q3, k3, v3, "twin_empty_past", "twin_empty_past",
             "twin_seqlens_k", "twin_total", cos, sin],
            [f"{name}/attn_3d", f"{name}/present_key", f"{name}/present_value"], name=f"{name}/gqa", domain=MS,
            num_heads=attrs["num_heads"], kv_num_heads=attrs["kv_num_heads"], scale=attrs["scale"],
            local_window_size=-1, softcap=0.0, do_rotary=attrs["do_rotary"], rotary_interleaved=attrs["rotary_interleaved"]))
        nodes.append(helper.make_node("Squeeze", [f"{name}/attn_3d", "twin_axis0"], [node.output[0]], name=f"{name}/squeeze"))
    if count == 0:
        raise SystemExit("no PagedAttention node: not a paged (variant B) package")
    inputs = [i for i in graph.input if not i.name.startswith("past_key_values.") and i.name not in DROPPED_INPUTS]
    outputs = [o for o in graph.output if o.name == "logits"]
    new_graph = helper.make_graph(nodes, graph.name + "_cpu_twin", inputs, outputs, list(graph.initializer) + extra_init)
    out = helper.make_model(new_graph, opset_imports=list(model.opset_import), producer_name="paged_twin.py")
    out.ir_version = model.ir_version
    return out


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    src, dst = argv
    with open(os.path.join(src, "genai_config.json")) as f:
        config = json.load(f)
    decoder = config["model"]["decoder"]
    model = onnx.load(os.path.join(src, decoder["filename"]), load_external_data=False)
    os.makedirs(dst, exist_ok=True)
    result = twin(model, decoder["num_key_value_heads"], decoder["head_size"])
    with open(os.path.join(dst, decoder["filename"]), "wb") as f:
        f.write(result.SerializeToString())
    for name in os.listdir(src):
        if name.endswith(".data") or name == "tokenizer.model":
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
    shutil.copyfile(os.path.join(src, "genai_config.json"), os.path.join(dst, "genai_config.json"))


if __name__ == "__main__":
    main(sys.argv[1:])
