"""Writes the engine's sampling graph, `src/VicunaBatch.Inference/Onnx/sampler.onnx` (embedded in the assembly).

  /usr/bin/python3 model-export/sampler_graph.py OUT.onnx

It draws sampled tokens from logits rows where they are — on the GPU, so no row comes down — and computes, step for
step, the sampling that `src/VicunaBatch.Inference/Engine/Sampler.cs` defines on the host (see its summary):

  inputs   logits           float32 [rows, vocab]   a decoder call's logits, every row of it
           row_index        int64   [n]             the rows to sample from
           inv_temperature  float32 [n]             1 / T  (T > 0)
           top_p            float32 [n]             1 = off
           uniform          float32 [n]             the request's draw for this token, in [0, 1)
  output   token_ids        int64   [n]

Top-k is not in it: a request with top-k (only a package's genai_config sets one) samples on the host.
It does not depend on the model: one graph serves every vocabulary size. The test suite regenerates it and compares
the bytes, so edit this file, not the .onnx."""
import sys

import onnx
from onnx import TensorProto, helper

OPSET = 17
IR_VERSION = 8
TOP_P_WAYS, TOP_P_ROUNDS = 4, 16  # Sampler.TopPWays, Sampler.TopPRounds: 4^16 = 2^32 parts of [0, 1]
DRAW_BLOCK = 64  # Sampler.DrawBlock


class Graph:
    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs) -> "str | list[str]":
        self._count += 1
        names = [f"{op_type.lower()}_{self._count}" + (f"_{i}" if outputs > 1 else "") for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=f"n{self._count}", **attrs))
        return names if outputs > 1 else names[0]

    def const(self, name: str, data_type: int, values: list, dims: "list[int] | None" = None) -> str:
        self.initializers.append(helper.make_tensor(name, data_type, dims if dims is not None else [len(values)], values))
        return name

    def model(self, name: str, inputs: list, outputs: list, producer: str) -> onnx.ModelProto:
        """These nodes and initializers as a checked model of OPSET and IR_VERSION."""
        graph = helper.make_graph(self.nodes, name, inputs=inputs, outputs=outputs, initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer)
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model, full_check=True)
        return model


def write_main(build, doc: str) -> None:
    """A graph script's command line: OUT.onnx, the bytes of build()."""
    if len(sys.argv) != 2:
        sys.exit(doc)
    with open(sys.argv[1], "wb") as f:
        f.write(build().SerializeToString())


def build(ways: int = None, rounds: int = None) -> onnx.ModelProto:
    ways = TOP_P_WAYS if ways is None else ways
    rounds = TOP_P_ROUNDS if rounds is None else rounds
    g = Graph()
    axis1 = g.const("axis_1", TensorProto.INT64, [1])
    axis2 = g.const("axis_2", TensorProto.INT64, [2])
    zero_f = g.const("zero_f", TensorProto.FLOAT, [0.0], [])
    one_f = g.const("one_f", TensorProto.FLOAT, [1.0], [])
    one_i = g.const("one_i", TensorProto.INT64, [1], [])

    def column(x: str) -> str:  # [n] -> [n, 1]
        return g.op("Unsqueeze", x, axis1)

    def row_sum(x: str) -> str:  # [n, V] -> [n, 1]
        return g.op("ReduceSum", x, axis1, keepdims=1)

    def keep_at_or_above(w: str, threshold: str) -> str:  # weights below the threshold become 0
        return g.op("Where", g.op("GreaterOrEqual", w, threshold), w, zero_f)

    # 1. w = exp((l - max l) / T)
    x = g.op("Gather", "logits", "row_index", axis=0)
    shifted = g.op("Sub", x, g.op("ReduceMax", x, axes=[1], keepdims=1))
    w = g.op("Exp", g.op("Mul", shifted, column("inv_temperature")))

    # 2. top-k: not here — a request with top-k samples on the host (it comes only from a package's genai_config)

    # 3. top-p: narrow [lo, lo + TOP_P_WAYS x step) from [0, 1) round by round, keeping lo's mass >= top_p x total:
    # each round tries the TOP_P_WAYS - 1 thresholds lo + k x step at once, moves lo to the last that holds and
    # divides step by TOP_P_WAYS (rank 3 throughout, [n, thresholds, vocab], so no reshapes between rounds)
    need = g.op("Unsqueeze", g.op("Mul", column("top_p"), row_sum(w)), axis2)  # [n, 1, 1]
    bounds_shape = g.op("Concat", g.op("Shape", "row_index"), axis1, axis1, axis=0)  # [n, 1, 1]
    lo = g.op("Expand", zero_f, bounds_shape)
    if rounds:
        ks = g.const("top_p_ks", TensorProto.FLOAT, [float(k) for k in range(1, ways)], [1, ways - 1, 1])
        per_way = g.const("top_p_per_way", TensorProto.FLOAT, [1.0 / ways], [])
        step = g.op("Expand", per_way, bounds_shape)
        w_rows = g.op("Unsqueeze", w, axis1)  # [n, 1, V]
    for _ in range(rounds):
        thresholds = g.op("Add", lo, g.op("Mul", step, ks))  # [n, ways - 1, 1]
        masses = g.op("ReduceSum", g.op("Where", g.op("GreaterOrEqual", w_rows, thresholds), w_rows, zero_f), axis2, keepdims=1)
        holding = g.op("ReduceSum", g.op("Cast", g.op("GreaterOrEqual", masses, need), to=TensorProto.FLOAT), axis1, keepdims=1)
        lo = g.op("Add", lo, g.op("Mul", step, holding))
        step = g.op("Mul", step, per_way)
    lo = g.op("Squeeze", lo, axis2)  # [n, 1]
    tau_p = g.op("Where", column(g.op("Less", "top_p", one_f)), lo, zero_f)
    w = keep_at_or_above(w, tau_p)

    # 4. the first id whose running sum (id order) exceeds uniform x the kept total, found in two levels of
    # DRAW_BLOCK ids (ONNX Runtime's CUDA CumSum re-adds every element before each output: a whole-vocabulary one costs
    # vocab^2 adds a row, a block-wide one vocab x DRAW_BLOCK). Both levels add in id order one element after another,
    # as Sampler.Draw does.
    block = g.const("draw_block", TensorProto.INT64, [DRAW_BLOCK], [])
    vocab = g.op("Gather", g.op("Shape", w), one_i, axis=0)
    padding = g.op("Sub", g.op("Mul", g.op("Div", g.op("Add", vocab, g.op("Sub", block, one_i)), block), block), vocab)
    pads = g.op("Concat", g.const("pads_head", TensorProto.INT64, [0, 0, 0]), g.op("Unsqueeze", padding, g.const("axis_0", TensorProto.INT64, [0])), axis=0)
    blocks = g.op("Reshape", g.op("Pad", w, pads), g.const("blocks_shape", TensorProto.INT64, [0, -1, DRAW_BLOCK]))  # [n, B, DRAW_BLOCK]
    within = g.op("CumSum", blocks, g.const("axis_2_scalar", TensorProto.INT64, [2], []))  # running sums inside each block
    block_sums = g.op("Squeeze", g.op("Slice", within, g.const("last_start", TensorProto.INT64, [-1]), g.const("last_end", TensorProto.INT64, [DRAW_BLOCK]),
                                      axis2), axis2)  # [n, B]
    through = g.op("CumSum", block_sums, one_i)  # running sum to the end of each block
    before = g.op("CumSum", block_sums, one_i, exclusive=1)  # ... to its start
    target = g.op("Mul", column("uniform"), g.op("ReduceMax", through, axes=[1], keepdims=1))
    last_block = g.op("Sub", g.op("Gather", g.op("Shape", block_sums), one_i, axis=0), one_i)
    b = g.op("Min", g.op("ReduceSum", g.op("Cast", g.op("LessOrEqual", through, target), to=TensorProto.INT64), axis1, keepdims=0), last_block)
    rest = g.op("Sub", target, g.op("GatherElements", before, column(b), axis=1))  # [n, 1]: what is left to pass in block b
    b_index = g.op("Expand", g.op("Unsqueeze", b, g.const("axes_1_2", TensorProto.INT64, [1, 2])),
                   g.op("Concat", g.op("Shape", "row_index"), axis1, g.const("block_1d", TensorProto.INT64, [DRAW_BLOCK]), axis=0))
    in_block = g.op("Squeeze", g.op("GatherElements", within, b_index, axis=1), axis1)  # [n, DRAW_BLOCK]
    j = g.op("ReduceSum", g.op("Cast", g.op("LessOrEqual", in_block, rest), to=TensorProto.INT64), axis1, keepdims=0)
    # no id of the block passes (rounding past the end): the heaviest id
    found = g.op("Less", j, block)
    first_over = g.op("Add", g.op("Mul", b, block), j)
    g.nodes.append(helper.make_node("Where", [found, first_over, g.op("ArgMax", w, axis=1, keepdims=0)], ["token_ids"], name="token_ids"))

    return g.model(
        "vicunabatch_sampler",
        inputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["rows", "vocab"]),
            helper.make_tensor_value_info("row_index", TensorProto.INT64, ["n"]),
            helper.make_tensor_value_info("inv_temperature", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("top_p", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("uniform", TensorProto.FLOAT, ["n"]),
        ],
        outputs=[helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["n"])],
        producer="vicunabatch-sampler",
    )


if __name__ == "__main__":
    write_main(build, __doc__)
