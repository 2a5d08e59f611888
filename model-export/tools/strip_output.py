"""Copies a model package without one graph output and the node that makes it — a package as an exporter that did
not write that output would have made it (e.g. `greedy_ids`, to measure or test the runners' path without it).

  strip_output.py SRC_DIR OUT_DIR OUTPUT_NAME

The weights are not read: `model.onnx.data` is hard-linked into OUT_DIR (same file system), the other files are
copied, and `model.onnx` is rewritten with its external-data references as they were."""
import os
import shutil
import sys

import onnx


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, out, name = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    for file in os.listdir(src):
        source, target = os.path.join(src, file), os.path.join(out, file)
        if file == "model.onnx.data":
            os.link(source, target)
        elif os.path.isfile(source):
            shutil.copyfile(source, target)
    path = os.path.join(out, "model.onnx")
    model = onnx.load(path, load_external_data=False)
    graph = model.graph
    kept = [n for n in graph.node if name not in n.output]
    if len(kept) != len(graph.node) - 1 or not any(o.name == name for o in graph.output):
        sys.exit(f"{src}: the graph has no output {name} made by a single node")
    del graph.node[:]
    graph.node.extend(kept)
    outputs = [o for o in graph.output if o.name != name]
    del graph.output[:]
    graph.output.extend(outputs)
    onnx.save(model, path)
    print(f"{out}: {src} without the output {name}", file=sys.stderr)


if __name__ == "__main__":
    main()
