"""Writes the engine's log-probability graph, `src/VicunaBatch.Inference/Onnx/logprobs.onnx` (embedded in the assembly).

  /usr/bin/python3 model-export/logprobs_graph.py OUT.onnx

It takes what `TokenLogprobs.Of` (src/VicunaBatch.Inference/Engine/TokenLogprobs.cs) takes on the host from the logits
rows where they are — on the GPU, so no row comes down, only n x (1 + 2 x MAX_TOP) numbers:

  inputs   logits           float32 [rows, vocab]   a decoder call's logits, every row of it
           row_index        int64   [n]             each pick's row
           token_ids        int64   [n]             the token each pick chose
  outputs  chosen_logprobs  float32 [n]             log-softmax of the row at the chosen token
           top_ids          int64   [n, top]        the top = min(MAX_TOP, vocab) largest logits' ids, largest first;
                                                    equal logits by the lower id (TopK's order, as TokenLogprobs.Of)
           top_logprobs     float32 [n, top]        their log-softmax

Log probabilities are of the raw logits (before temperature, top-p), as on the host. The top ids are ranked on the
logits, not on their log-softmax, so two logits that round to one log probability keep the host's order. It does not
depend on the model: one graph serves every vocabulary size. The test suite regenerates it and compares the bytes, so
edit this file, not the .onnx."""
import onnx
from onnx import TensorProto, helper

from sampler_graph import Graph, write_main

MAX_TOP = 20  # TokenLogprobs.MaxTop


def build() -> onnx.ModelProto:
    g = Graph()
    axis1 = g.const("axis_1", TensorProto.INT64, [1])

    x = g.op("Gather", "logits", "row_index", axis=0)  # [n, V]
    log_probs = g.op("LogSoftmax", x, axis=1)  # [n, V]
    top = g.op("Min", g.const("max_top", TensorProto.INT64, [MAX_TOP]), g.op("Shape", x, start=1, end=2))  # [1]
    _, top_ids = g.op("TopK", x, top, outputs=2, axis=1, largest=1, sorted=1)  # [n, top]
    g.nodes.append(helper.make_node("Identity", [top_ids], ["top_ids"], name="top_ids"))
    g.nodes.append(helper.make_node("GatherElements", [log_probs, top_ids], ["top_logprobs"], name="top_logprobs", axis=1))
    chosen = g.op("GatherElements", log_probs, g.op("Unsqueeze", "token_ids", axis1), axis=1)  # [n, 1]
    g.nodes.append(helper.make_node("Squeeze", [chosen, axis1], ["chosen_logprobs"], name="chosen_logprobs"))

    return g.model(
        "vicunabatch_logprobs",
        inputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["rows", "vocab"]),
            helper.make_tensor_value_info("row_index", TensorProto.INT64, ["n"]),
            helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["n"]),
        ],
        outputs=[
            helper.make_tensor_value_info("chosen_logprobs", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("top_ids", TensorProto.INT64, ["n", "top"]),
            helper.make_tensor_value_info("top_logprobs", TensorProto.FLOAT, ["n", "top"]),
        ],
        producer="vicunabatch-logprobs",
    )


if __name__ == "__main__":
    write_main(build, __doc__)
