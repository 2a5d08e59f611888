"""The LLaMA decoder graph, see ONNX_CONTRACT.md: variant A (com.microsoft.GroupQueryAttention, the default)
or variant B (com.microsoft.PagedAttention, attention="paged"). Both share every node but attention's.

Shapes: B batch_size, S sequence_length, P past_sequence_length, T total_sequence_length,
N num_tokens (variant B: every scheduled token of the step, packed), NB num_blocks, BS block_size,
MB max_num_blocks, d hidden, H heads, KVH kv heads, hd head size, F ffn, V vocab.
Variant A activations are [B, S, ..]; variant B's are [N, ..] and its logits [B, V] (last token per request).
Weights arrive as TensorProtos (inline or external) in storage layout ([in, out]).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from int4 import Int4Params
from weights import ModelConfig, packed_qkv_name, stored_tensors

MS = "com.microsoft"
OPSET = 17
IR_VERSION = 8

GQA = "gqa"
PAGED = "paged"
ATTENTIONS = (GQA, PAGED)
DEFAULT_BLOCK_SIZE = 256  # ONNX Runtime GenAI's default; FlashAttention wants a multiple of 128 at head size 128
PAGED_MAX_BATCH_SIZE = 256  # the CUDA kernel's cub::BlockScan over the batch

@dataclasses.dataclass(frozen=True)
class KvScales:
    """An int8 KV cache's symmetric dequantization scales, one a layer: real value = int8 value * scale."""
    key: tuple[float, ...]
    value: tuple[float, ...]


OURS = "ours"
GENAI_BUILDER = "genai-builder"
LAYOUTS = (OURS, GENAI_BUILDER)

# numpy -> ONNX element type for what a package stores; a table of our own because onnx.mapping
# (onnx <= 1.12, Debian's) is gone in onnx 1.23 and helper.np_dtype_to_tensor_dtype is missing in 1.12.
_NP_TO_ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
               np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int32): TensorProto.INT32,
               np.dtype(np.int64): TensorProto.INT64}


def onnx_type(dtype) -> int:
    """TensorProto element type of a numpy dtype the exporter writes."""
    try:
        return _NP_TO_ONNX[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"no ONNX element type for numpy dtype {np.dtype(dtype)} in this exporter") from None


def rotary_caches(cfg: ModelConfig, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin [context_length, hd/2]: angle(pos, j) = pos * theta^(-2j/hd)."""
    hd = cfg.head_size
    inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))   # [hd/2]
    angles = np.outer(np.arange(cfg.context_length, dtype=np.float64), inv_freq)     # [ctx, hd/2]
    return np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)


def quantized_names(cfg: ModelConfig, packed_qkv: bool) -> set[str]:
    """The [in, out] MatMul weights an int4 package stores for MatMulNBits (not embeddings or norms)."""
    return {s.name for s in stored_tensors(cfg, packed_qkv) if s.name.endswith("proj.weight") or s.name == "lm_head.weight"}


def rotary_inside_gqa(cfg: ModelConfig) -> bool:
    # ORT's CPU GroupQueryAttention rejects cos/sin caches unless head_size % 16 == 0.
    return cfg.head_size % 16 == 0


class _Builder:
    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._count = 0

    def op(self, op_type: str, inputs: list[str], num_outputs: int = 1, domain: str = "",
           outputs: list[str] | None = None, **attrs) -> list[str]:
        self._count += 1
        name = f"/{op_type}_{self._count}"
        outputs = outputs or [f"{name}/out{k}" for k in range(num_outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs

    def one(self, op_type: str, inputs: list[str], domain: str = "", **attrs) -> str:
        return self.op(op_type, inputs, 1, domain, **attrs)[0]

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name


def check_paged(cfg: ModelConfig, dtype: np.dtype, block_size: int) -> None:
    """What variant B needs (ONNX Runtime 1.31's CUDA PagedAttention): fp16 activations, rotary inside the kernel,
    a power-of-two block size of at least 16."""
    if np.dtype(dtype) != np.float16:
        raise ValueError(f"--attention paged needs float16 activations (PagedAttention is float16/bfloat16 on CUDA "
                         f"only): use --dtype float16, or --dtype int4 --int4-activations float16; got {np.dtype(dtype)}")
    if not rotary_inside_gqa(cfg):
        raise ValueError(f"--attention paged keeps rotary inside PagedAttention (do_rotary=1), which needs "
                         f"head_size % 16 == 0; this model's head_size is {cfg.head_size}: export variant A")
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"--block-size must be a power of two >= 16, got {block_size}")


def takes_position_ids(cfg: ModelConfig, layout: str) -> bool:
    """ONNX Runtime GenAI's model builder feeds rotary outside GQA from a position_ids input; our layout derives the
    positions from attention_mask."""
    return layout == GENAI_BUILDER and not rotary_inside_gqa(cfg)


def check_kv_scales(cfg: ModelConfig, kv_scales: KvScales) -> None:
    """An int8 KV cache's dequantization scales: one positive key and one value scale per layer."""
    for kind, scales in (("key", kv_scales.key), ("value", kv_scales.value)):
        if len(scales) != cfg.num_layers:
            raise ValueError(f"int8 KV: {len(scales)} {kind} scales for {cfg.num_layers} layers")
        if not all(np.isfinite(s) and s > 0 for s in scales):
            raise ValueError(f"int8 KV: every {kind} scale must be a positive number, got {list(scales)}")


def build_model(cfg: ModelConfig, dtype: np.dtype, weights: dict[str, TensorProto],
                quant: Int4Params | None = None, attention: str = GQA,
                block_size: int = DEFAULT_BLOCK_SIZE, packed_qkv: bool = True, layout: str = OURS,
                kv_scales: KvScales | None = None) -> onnx.ModelProto:
    """packed_qkv: the weights hold each layer's q, k, v projections as one matrix (weights.stored_tensors).
    kv_scales (variant B only): the KV cache holds int8, each layer's keys and values quantized with one symmetric
    scale each (PagedAttention's k_scale and v_scale, PER_TENSOR); None: the cache holds the activations' float16.
    layout genai-builder (variant A only): the inputs and outputs ONNX Runtime GenAI's model builder
    (src/python/py/models/builders/base.py) writes for LLaMA: position_ids when rotary runs outside GQA, the KV's last
    dimension symbolic (kv_cache_dim), no greedy_ids."""
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
    if layout not in LAYOUTS or (layout == GENAI_BUILDER and attention != GQA):
        raise ValueError(f"layout must be one of {LAYOUTS} (genai-builder with attention gqa), got {layout!r}")
    dtype = np.dtype(dtype)
    if attention == PAGED:
        check_paged(cfg, dtype, block_size)
    if kv_scales is not None:
        if attention != PAGED:
            raise ValueError("an int8 KV cache needs --attention paged (PagedAttention's k_scale and v_scale)")
        check_kv_scales(cfg, kv_scales)
    onnx_dtype = onnx_type(dtype)
    kv_dtype = TensorProto.INT8 if kv_scales is not None else onnx_dtype
    d, H, KVH, hd = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_size
    g = _Builder()
    g.initializers.extend(weights.values())
    w = lambda name: weights[name].name  # noqa: E731
    inside = rotary_inside_gqa(cfg)
    name_to_shape = {s.name: s.shape for s in stored_tensors(cfg, packed_qkv)}

    def matmul(x: str, name: str) -> str:
        """x [.., K] @ W [K, N]; int4: MatMulNBits over W^T blocks (int4.py has the layout)."""
        if name in weights:
            return g.one("MatMul", [x, w(name)])
        k, n = name_to_shape[name]
        inputs = [x, w(name + "_Q4"), w(name + "_scales")] + ([] if quant.symmetric else [w(name + "_zp")])
        return g.one("MatMulNBits", inputs, MS, K=k, N=n, bits=4, block_size=quant.block_size)

    cos, sin = rotary_caches(cfg, dtype)
    g.const("cos_cache", cos)                                       # [ctx, hd/2]
    g.const("sin_cache", sin)                                       # [ctx, hd/2]
    attention_scale = float(1.0 / np.sqrt(hd))
    if attention == GQA:
        attend = _gqa_attention(g, cfg, inside, attention_scale, takes_position_ids(cfg, layout))
    else:
        attend, last_token = _paged_attention(g, cfg, attention_scale, kv_scales)

    x = g.one("Gather", [w("model.embed_tokens.weight"), "input_ids"], axis=0)     # [B, S, d] | [N, d]
    residual = None

    def norm(x: str, residual: str | None, weight: str) -> tuple[str, str]:
        """RMSNorm(x + residual) * weight -> (normed [B, S, d], new residual [B, S, d])."""
        if residual is None:
            return g.one("SimplifiedLayerNormalization", [x, weight], axis=-1,
                         epsilon=cfg.rms_norm_eps, stash_type=1), x
        out, _, _, summed = g.op("SkipSimplifiedLayerNormalization", [x, residual, weight], 4, MS,
                                 epsilon=cfg.rms_norm_eps)
        return out, summed

    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        # Attention block.
        h, residual = norm(x, residual, w(p + "input_layernorm.weight"))           # [B, S, d]
        if packed_qkv:
            # [B, S, (H + 2 KVH) hd]: attention takes q | k | v packed, its key and value inputs left empty
            attn = attend(i, matmul(h, packed_qkv_name(i)), "", "")   # [B, S, H*hd]
        else:
            q = matmul(h, p + "self_attn.q_proj.weight")              # [B, S, H*hd]
            k = matmul(h, p + "self_attn.k_proj.weight")              # [B, S, KVH*hd]
            v = matmul(h, p + "self_attn.v_proj.weight")              # [B, S, KVH*hd]
            attn = attend(i, q, k, v)                                 # [B, S, H*hd]
        x = matmul(attn, p + "self_attn.o_proj.weight")               # [B, S, d]
        # SwiGLU MLP block.
        h, residual = norm(x, residual, w(p + "post_attention_layernorm.weight"))  # [B, S, d]
        gate = matmul(h, p + "mlp.gate_proj.weight")                  # [B, S, F]
        up = matmul(h, p + "mlp.up_proj.weight")                      # [B, S, F]
        act = g.one("Mul", [g.one("Mul", [gate, g.one("Sigmoid", [gate])]), up])    # [B, S, F]
        x = matmul(act, p + "mlp.down_proj.weight")                   # [B, S, d]

    h, _ = norm(x, residual, w("model.norm.weight"))                                # [B, S, d] | [N, d]
    if attention == PAGED:
        h = g.one("Gather", [h, last_token], axis=0)                                # [B, d]: each request's last token
    logits = matmul(h, "lm_head.weight")                              # [B, S, V] | [B, V]
    g.nodes.append(helper.make_node("Cast", [logits], ["logits"], name="/logits_cast", to=TensorProto.FLOAT))
    if layout == OURS:
        # greedy requests need only this id on the host, not a [vocab] row of logits (first index of the max, as the
        # engine's own greedy pick): [B, S] for variant A, [B] for variant B
        g.nodes.append(helper.make_node("ArgMax", ["logits"], ["greedy_ids"], name="/greedy_argmax", axis=-1, keepdims=0))

    if attention == GQA:
        inputs, outputs, name = _gqa_io(cfg, onnx_dtype, layout), _gqa_outputs(cfg, onnx_dtype, layout), "llama_gqa"
    else:
        inputs, outputs, name = _paged_io(cfg, kv_dtype, block_size), _paged_outputs(cfg, kv_dtype, block_size), \
            "llama_paged"
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
                              producer_name="VicunaBatch.model-export")
    model.ir_version = IR_VERSION
    return model


def _gqa_attention(g: _Builder, cfg: ModelConfig, inside: bool, scale: float, position_input: bool = False):
    """Variant A's attention metadata (from the mask alone) and a per-layer GroupQueryAttention.
    position_input: rotary outside GQA reads the position_ids input instead of deriving them from the mask."""
    hd, H, KVH = cfg.head_size, cfg.num_heads, cfg.num_kv_heads
    one_i64 = g.const("const_one_i64", np.array(1, np.int64))
    axis1 = g.const("const_axes_1", np.array([1], np.int64))

    mask_sum = g.one("ReduceSum", ["attention_mask", axis1], keepdims=0)            # [B]
    seqlens_k = g.one("Cast", [g.one("Sub", [mask_sum, one_i64])], to=TensorProto.INT32)  # [B]
    total_len = g.one("Cast", [g.one("Gather", [g.one("Shape", ["attention_mask"]), one_i64], axis=0)],
                      to=TensorProto.INT32)                                         # [] scalar

    if not inside and position_input:
        position_ids = "position_ids"                                               # [B, S]
    elif not inside:
        # position_ids = CumSum(mask)[:, T-S:] - 1: j for right-padded first prompts, P + j for a
        # chunk after past, each row's own length - 1 for ragged decode (what GQA itself uses).
        cumsum = g.one("CumSum", ["attention_mask", g.const("const_axis_1", np.array(1, np.int64))])  # [B, T]
        neg_s = g.one("Neg", [g.one("Shape", ["input_ids"], start=1, end=2)])       # [1] = -S
        tail = g.one("Slice", [cumsum, neg_s, g.const("const_int64_max", np.array([2**62], np.int64)), axis1])
        position_ids = g.one("Sub", [tail, one_i64])                                # [B, S]
    if not inside:
        axis2 = g.const("const_axes_2", np.array([2], np.int64))
        cos_pos = g.one("Unsqueeze", [g.one("Gather", ["cos_cache", position_ids], axis=0), axis2])  # [B, S, 1, hd/2]
        sin_pos = g.one("Unsqueeze", [g.one("Gather", ["sin_cache", position_ids], axis=0), axis2])  # [B, S, 1, hd/2]
        heads_shape = g.const("const_shape_heads", np.array([0, 0, -1, hd], np.int64))
        flat_shape = g.const("const_shape_flat", np.array([0, 0, -1], np.int64))
        halves = g.const("const_split_halves", np.array([hd // 2, hd // 2], np.int64))

        def rotate(x: str) -> str:
            """Half-split rotary: [B, S, n*hd] -> [B, S, n*hd]."""
            x4 = g.one("Reshape", [x, heads_shape])                                 # [B, S, n, hd]
            x1, x2 = g.op("Split", [x4, halves], 2, axis=-1)                        # [B, S, n, hd/2] x2
            r1 = g.one("Sub", [g.one("Mul", [x1, cos_pos]), g.one("Mul", [x2, sin_pos])])
            r2 = g.one("Add", [g.one("Mul", [x2, cos_pos]), g.one("Mul", [x1, sin_pos])])
            return g.one("Reshape", [g.one("Concat", [r1, r2], axis=-1), flat_shape])


    split_sizes: list[str] = []  # the packed q | k | v split for rotary outside GQA: made on first use

    def attend(i: int, q: str, k: str, v: str) -> str:
        """q [B, S, H*hd], k, v [B, S, KVH*hd] -> [B, S, H*hd]; present.{i}.* share the past buffers.
        k = v = "": q is [B, S, (H + 2 KVH) hd], the three packed."""
        if not inside and not k:
            if not split_sizes:
                split_sizes.append(g.const("const_split_qkv", np.array([H * hd, KVH * hd, KVH * hd], np.int64)))
            q, k, v = g.op("Split", [q, split_sizes[0]], 3, axis=-1)  # rotary runs on q and k apart from GQA
        gqa_inputs = [q, k, v, f"past_key_values.{i}.key", f"past_key_values.{i}.value", seqlens_k, total_len]
        if inside:
            gqa_inputs += ["cos_cache", "sin_cache"]
        else:
            gqa_inputs[0], gqa_inputs[1] = rotate(q), rotate(k)
        return g.op("GroupQueryAttention", gqa_inputs, domain=MS,
                    outputs=[f"model.layers.{i}.attn_out", f"present.{i}.key", f"present.{i}.value"],
                    num_heads=H, kv_num_heads=KVH, scale=scale, local_window_size=-1,
                    softcap=0.0, do_rotary=int(inside), rotary_interleaved=0)[0]
    return attend


def _paged_attention(g: _Builder, cfg: ModelConfig, scale: float, kv_scales: KvScales | None = None):
    """Variant B: each request's last packed token (for the pruned LM head) and a per-layer PagedAttention.

    Rotary runs inside the kernel (do_rotary=1): token t of request b is at position
    past_sequence_lengths[b] + t - cumulative_sequence_lengths[b], which the kernel derives itself from the
    two length inputs, so the graph needs no position ids. Input order as seen on ONNX Runtime 1.31
    (ONNX_CONTRACT.md): query, key, value, key_cache, value_cache, cumulative_sequence_length, past_seqlens,
    block_table, cos_cache, sin_cache, slot_mapping, head_sink, q_norm_weight, k_norm_weight, k_scale, v_scale,
    attention_metadata (the optional ones left empty). An int8 cache (kv_scales): k_scale and v_scale are each layer's
    float [1] dequantization scales, k_quant_type = v_quant_type = PER_TENSOR; the kernel quantizes what it writes.
    """
    H, KVH = cfg.num_heads, cfg.num_kv_heads
    ends = g.one("Slice", ["cumulative_sequence_lengths", g.const("const_paged_one", np.array([1], np.int64)),
                           g.const("const_paged_int64_max", np.array([2**62], np.int64))])   # [B] int32
    last_token = g.one("Sub", [ends, g.const("const_paged_one_i32", np.array(1, np.int32))])  # [B] int32

    def attend(i: int, q: str, k: str, v: str) -> str:
        """q [N, H*hd], k, v [N, KVH*hd] -> [N, H*hd]; writes k, v into the blocks in place (present aliases past).
        k = v = "": q is [N, (H + 2 KVH) hd], the three packed."""
        inputs = [q, k, v, f"past_key_values.{i}.key", f"past_key_values.{i}.value",
                  "cumulative_sequence_lengths", "past_sequence_lengths", "block_table", "cos_cache", "sin_cache",
                  "", "", "", "", "", "", "attention_metadata"]
        quantized = {}
        if kv_scales is not None:
            inputs[14] = g.const(f"kv_scale.{i}.key", np.array([kv_scales.key[i]], np.float32))
            inputs[15] = g.const(f"kv_scale.{i}.value", np.array([kv_scales.value[i]], np.float32))
            quantized = {"k_quant_type": "PER_TENSOR", "v_quant_type": "PER_TENSOR"}
        return g.op("PagedAttention", inputs, domain=MS,
                    outputs=[f"model.layers.{i}.attn_out", f"present.{i}.key", f"present.{i}.value"],
                    num_heads=H, kv_num_heads=KVH, scale=scale, local_window_size=-1,
                    softcap=0.0, do_rotary=1, rotary_interleaved=0, **quantized)[0]
    return attend, last_token


def _kv_last_dim(cfg: ModelConfig, layout: str):
    # the builder leaves it symbolic: one export serves float and quantized (packed) KV caches
    return "kv_cache_dim" if layout == GENAI_BUILDER else cfg.head_size


def _gqa_io(cfg: ModelConfig, onnx_dtype: int, layout: str = OURS) -> list:
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64,
                                            ["batch_size", "total_sequence_length"])]
    if takes_position_ids(cfg, layout):
        inputs.append(helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch_size", "sequence_length"]))
    past_shape = ["batch_size", cfg.num_kv_heads, "past_sequence_length", _kv_last_dim(cfg, layout)]
    for i in range(cfg.num_layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", onnx_dtype, past_shape))
    return inputs


def _gqa_outputs(cfg: ModelConfig, onnx_dtype: int, layout: str = OURS) -> list:
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                             ["batch_size", "sequence_length", cfg.vocab_size])]
    if layout == OURS:
        outputs.append(helper.make_tensor_value_info("greedy_ids", TensorProto.INT64, ["batch_size", "sequence_length"]))
    present_shape = ["batch_size", cfg.num_kv_heads, "total_sequence_length", _kv_last_dim(cfg, layout)]
    for i in range(cfg.num_layers):
        for kind in ("key", "value"):
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", onnx_dtype, present_shape))
    return outputs


def _paged_io(cfg: ModelConfig, kv_dtype: int, block_size: int) -> list:
    i32 = TensorProto.INT32
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["num_tokens"]),
              helper.make_tensor_value_info("cumulative_sequence_lengths", i32, ["batch_size_plus_1"]),
              helper.make_tensor_value_info("past_sequence_lengths", i32, ["batch_size"]),
              helper.make_tensor_value_info("block_table", i32, ["batch_size", "max_num_blocks"]),
              # [max_query_len, max_kv_len, min_kv_len], bound in CPU memory
              helper.make_tensor_value_info("attention_metadata", i32, [3])]
    cache_shape = ["num_blocks", block_size, cfg.num_kv_heads, cfg.head_size]
    for i in range(cfg.num_layers):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", kv_dtype, cache_shape))
    return inputs


def _paged_outputs(cfg: ModelConfig, kv_dtype: int, block_size: int) -> list:
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", cfg.vocab_size]),
               helper.make_tensor_value_info("greedy_ids", TensorProto.INT64, ["batch_size"])]
    cache_shape = ["num_blocks", block_size, cfg.num_kv_heads, cfg.head_size]
    for i in range(cfg.num_layers):
        for kind in ("key", "value"):
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", kv_dtype, cache_shape))
    return outputs
