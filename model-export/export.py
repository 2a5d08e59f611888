#!/usr/bin/python3
"""Write a model package: model.onnx [+ model.onnx.data], genai_config.json [, tokenizer.model].
Variant A (GroupQueryAttention) by default; --attention paged writes variant B (PagedAttention, CUDA only).

  export.py --from-llama2c stories260K.bin --out DIR [--dtype float32|float16|int4]
  export.py --from-hf HF_DIR --out DIR [--dtype ...]                 (Hugging Face LlamaForCausalLM folder)
  export.py --base HF_DIR --delta HF_DIR --out DIR [--dtype ...]     (target = base + delta)
  export.py --config tiny|vicuna-7b|vicuna-13b --seed N --out DIR [--dtype ...] [--vocab-size N]
            [--context-length N] [--tokenizer tokenizer.model]
  int4: [--int4-block-size 32|64|128] [--int4-symmetric] [--int4-activations float32|float16]
  --attention gqa|paged [--block-size N]   (paged: float16, CUDA only; ONNX_CONTRACT.md variant B)
  --kv-cache int8 --kv-scales FILE|S   (paged: K and V stored as int8, half the bytes of float16; scales from
            kv_scales.py, or S for every layer)
  --qkv packed|separate: each layer's q, k, v projections as one MatMul (the default) or three
  --layout ours|genai-builder: genai-builder writes the graph's inputs and outputs and genai_config.json as ONNX Runtime
            GenAI's model builder does for LLaMA (position_ids when rotary runs outside GQA, no greedy_ids)
  --verify: run the package through the C# engine (vicuna-batch generate) and compare greedy ids with reference.py.
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
import onnx
from onnx import TensorProto, helper

import int4
from hf_checkpoint import DeltaWeights, HfWeights
from llama_graph import (ATTENTIONS, DEFAULT_BLOCK_SIZE, GENAI_BUILDER, GQA, LAYOUTS, OURS, PAGED, PAGED_MAX_BATCH_SIZE,
                         KvScales, build_model, check_kv_scales, check_paged, onnx_type, quantized_names,
                         takes_position_ids)
from weights import PRESETS, Llama2cWeights, ModelConfig, RandomWeights, stored_chunks, stored_tensors

EXTERNAL_THRESHOLD_BYTES = 100 * 1024 * 1024
DATA_FILE = "model.onnx.data"
QKV_PACKED, QKV_SEPARATE = "packed", "separate"
QKV_LAYOUTS = (QKV_PACKED, QKV_SEPARATE)
ALIGNMENT = 4096  # page-aligned offsets let ORT map external data instead of reading it


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-llama2c", metavar="FILE", help="llama2.c legacy (v0) checkpoint")
    src.add_argument("--config", choices=sorted(PRESETS), help="random weights with these shapes")
    src.add_argument("--from-hf", metavar="DIR", help="Hugging Face checkpoint folder (config.json + weights)")
    src.add_argument("--delta", metavar="DIR", help="Hugging Face delta folder; needs --base")
    ap.add_argument("--base", metavar="DIR", help="Hugging Face base folder the --delta applies to")
    ap.add_argument("--seed", type=int, default=0, help="random weights seed (default 0)")
    ap.add_argument("--out", required=True, help="package folder (created)")
    ap.add_argument("--dtype", choices=["float32", "float16", "int4"], default="float32",
                    help="int4: MatMul weights as MatMulNBits, embeddings/norms in --int4-activations")
    ap.add_argument("--int4-block-size", type=int, choices=[32, 64, 128], default=32)
    ap.add_argument("--int4-symmetric", action="store_true", help="no zero points (implicit 8)")
    ap.add_argument("--int4-activations", choices=["float32", "float16"], default="float32")
    ap.add_argument("--attention", choices=ATTENTIONS, default=GQA,
                    help="gqa: variant A (CPU and CUDA, the default); paged: variant B, com.microsoft.PagedAttention "
                         "(CUDA only, float16)")
    ap.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE,
                    help=f"paged: tokens per KV block, a power of two >= 16 (default {DEFAULT_BLOCK_SIZE}; "
                         "FlashAttention wants a multiple of 128 at head size 128)")
    ap.add_argument("--max-scheduled-tokens", type=int, default=2048,
                    help="paged: engine.dynamic_batching.max_scheduled_tokens written to genai_config.json (default 2048)")
    ap.add_argument("--kv-cache", choices=["float16", "int8"], default="float16",
                    help="paged: what the KV cache stores; int8 halves its bytes (twice the tokens in the same memory) "
                         "and needs --kv-scales")
    ap.add_argument("--kv-scales", metavar="FILE|S",
                    help="int8 KV: the JSON kv_scales.py writes (each layer's key and value scale), or one number for "
                         "every layer's keys and values")
    ap.add_argument("--qkv", choices=QKV_LAYOUTS, default=QKV_PACKED,
                    help="packed (the default): each layer's q, k and v projections stored as one [d, (H + 2 KVH) hd] "
                         "matrix, one MatMul a layer, attention in its packed form; separate: three matrices and MatMuls")
    ap.add_argument("--layout", choices=LAYOUTS, default=OURS,
                    help="ours (the default): greedy_ids output, positions from attention_mask; genai-builder: the "
                         "inputs, outputs and genai_config.json ONNX Runtime GenAI's model builder writes for LLaMA "
                         "(position_ids input when rotary runs outside GQA, symbolic KV head dimension, no greedy_ids; gqa only)")
    ap.add_argument("--link-weights", metavar="DIR",
                    help="hard-link DIR/model.onnx.data instead of writing the weights (DIR: an export of the same "
                         "source, seed and dtype, e.g. variant A of the package written as variant B; only the size is checked)")
    ap.add_argument("--verify", action="store_true", help="compare the C# engine's greedy ids with reference.py")
    ap.add_argument("--verify-prompts", default=None, help="';'-separated id lists (default: two prompts)")
    ap.add_argument("--verify-max-tokens", type=int, default=16)
    ap.add_argument("--vocab-size", type=int, help="override vocab (random configs)")
    ap.add_argument("--context-length", type=int, help="override context length (random configs)")
    ap.add_argument("--tokenizer", metavar="FILE",
                    help="SentencePiece model copied as tokenizer.model (Hugging Face: the folder's own by default)")
    args = ap.parse_args(argv)
    if bool(args.base) != bool(args.delta):
        ap.error("--base and --delta go together")
    if args.attention == PAGED and args.layout == GENAI_BUILDER:
        ap.error("--layout genai-builder writes variant A (--attention gqa)")
    if args.kv_cache == "int8" and args.attention != PAGED:
        ap.error("--kv-cache int8 needs --attention paged (PagedAttention quantizes what it writes)")
    if (args.kv_cache == "int8") != (args.kv_scales is not None):
        ap.error("--kv-cache int8 and --kv-scales go together (model-export/kv_scales.py writes the scales of a model)")
    if args.attention == PAGED and args.verify:
        ap.error("--verify runs the engine on the CPU, and a paged package runs on CUDA only "
                 "(scripts/gpu/bench-h100.sh paged-check compares it with variant A on the GPU)")
    return args


def sentencepiece_vocab_size(path: str) -> int:
    try:
        import sentencepiece
    except ImportError as e:
        raise SystemExit(f"--tokenizer needs the sentencepiece module (python3-sentencepiece): {e}")
    return sentencepiece.SentencePieceProcessor(model_file=path).get_piece_size()


def read_kv_scales(spec: str, cfg: ModelConfig) -> KvScales:
    """--kv-scales: a number for every layer, or kv_scales.py's JSON ({"key": [..], "value": [..]} a layer each)."""
    try:
        s = float(spec)
        scales = KvScales((s,) * cfg.num_layers, (s,) * cfg.num_layers)
    except ValueError:
        try:
            with open(spec) as f:
                doc = json.load(f)
            scales = KvScales(tuple(float(x) for x in doc["key"]), tuple(float(x) for x in doc["value"]))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SystemExit(f"--kv-scales {spec}: neither a number nor kv_scales.py's JSON ({e})")
    try:
        check_kv_scales(cfg, scales)
    except ValueError as e:
        raise SystemExit(f"--kv-scales {spec}: {e}")
    return scales


def resolve_source(args: argparse.Namespace):
    if args.from_llama2c:
        if args.vocab_size or args.context_length:
            raise SystemExit("--vocab-size/--context-length apply to --config only")
        return Llama2cWeights(args.from_llama2c)
    if args.from_hf or args.delta:
        if args.vocab_size or args.context_length:
            raise SystemExit("--vocab-size/--context-length apply to --config only")
        return HfWeights(args.from_hf) if args.from_hf else DeltaWeights(args.base, args.delta)
    cfg = PRESETS[args.config]
    vocab = args.vocab_size or (sentencepiece_vocab_size(args.tokenizer) if args.tokenizer else None)
    if vocab:
        cfg = dataclasses.replace(cfg, vocab_size=vocab)
    if args.context_length:
        cfg = dataclasses.replace(cfg, context_length=args.context_length)
    return RandomWeights(cfg, args.seed)


def tensor_items(source, dtype: np.dtype, quant: int4.Int4Params | None, packed_qkv: bool):
    """(name, onnx type, dims, stored bytes, chunk iterator) per stored tensor, in file order."""
    onnx_dtype = onnx_type(dtype)
    to_quantize = quantized_names(source.cfg, packed_qkv) if quant else set()
    for spec in stored_tensors(source.cfg, packed_qkv):
        if spec.name not in to_quantize:
            yield spec.name, onnx_dtype, spec.shape, int(np.prod(spec.shape)) * dtype.itemsize, \
                (lambda spec=spec: stored_chunks(source, spec, dtype))
            continue
        k, n = spec.shape                                                     # [in, out]
        nb = int4.num_blocks(k, quant.block_size)
        produced = {}

        def part(key: str, spec=spec, k=k, n=n, produced=produced):
            if not produced:  # quantize once, when the first part is written
                w = np.concatenate(list(stored_chunks(source, spec, np.dtype(np.float32)))).reshape(k, n)
                produced.update(zip(("q", "scales", "zp"), int4.quantize(w, quant, dtype)))
            return iter([produced.pop(key).reshape(-1)])
        yield spec.name + "_Q4", TensorProto.UINT8, (n, nb, quant.block_size // 2), n * nb * quant.block_size // 2, \
            (lambda part=part: part("q"))
        yield spec.name + "_scales", onnx_dtype, (n * nb,), n * nb * dtype.itemsize, (lambda part=part: part("scales"))
        if not quant.symmetric:
            yield spec.name + "_zp", TensorProto.UINT8, (n * ((nb + 1) // 2),), n * ((nb + 1) // 2), \
                (lambda part=part: part("zp"))


def write_weights(source, dtype: np.dtype, out_dir: str, quant: int4.Int4Params | None = None,
                  link_from: str | None = None, packed_qkv: bool = True) -> dict[str, TensorProto]:
    """Stream every tensor; external data above the threshold, inline below. link_from: a package folder whose
    model.onnx.data holds these very tensors (same source, seed, dtype, --qkv): hard-linked, not rewritten."""
    items = list(tensor_items(source, dtype, quant, packed_qkv))
    total = sum(item[3] for item in items)
    protos: dict[str, TensorProto] = {}
    if link_from and total > EXTERNAL_THRESHOLD_BYTES:
        return link_weights(items, out_dir, link_from)
    if total <= EXTERNAL_THRESHOLD_BYTES:
        for name, onnx_dtype, dims, _, chunks in items:
            data = np.concatenate(list(chunks()))
            protos[name] = helper.make_tensor(name, onnx_dtype, dims, data.tobytes(), raw=True)
        return protos

    started = time.monotonic()
    with open(os.path.join(out_dir, DATA_FILE), "wb") as f:
        for i, (name, onnx_dtype, dims, _, chunks) in enumerate(items):
            pad = -f.tell() % ALIGNMENT
            f.write(b"\0" * pad)
            offset = f.tell()
            for chunk in chunks():
                f.write(memoryview(np.ascontiguousarray(chunk)).cast("B"))
            protos[name] = external_proto(name, onnx_dtype, dims, offset, f.tell() - offset)
            print(f"[{i + 1}/{len(items)}] {name} {list(dims)} "
                  f"{f.tell() / 1e9:.2f}/{total / 1e9:.2f} GB {time.monotonic() - started:.0f}s",
                  file=sys.stderr, flush=True)
    return protos


def external_proto(name: str, onnx_dtype: int, dims, offset: int, length: int) -> TensorProto:
    t = TensorProto(name=name, data_type=onnx_dtype, dims=dims, data_location=TensorProto.EXTERNAL)
    for key, value in (("location", DATA_FILE), ("offset", str(offset)), ("length", str(length))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def link_weights(items, out_dir: str, link_from: str) -> dict[str, TensorProto]:
    """The offsets write_weights would write, over a hard link to link_from's data file: its size and its model's
    table of external tensors (names, shapes, offsets) must be these (the bytes themselves are not compared)."""
    protos, position = {}, 0
    for name, onnx_dtype, dims, length, _ in items:
        position += -position % ALIGNMENT
        protos[name] = external_proto(name, onnx_dtype, dims, position, length)
        position += length
    source = os.path.join(link_from, DATA_FILE)
    redo = "export that package from the same source, seed, dtype and --qkv first"
    if not os.path.exists(source) or os.path.getsize(source) != position:
        raise SystemExit(f"--link-weights {link_from}: {DATA_FILE} is missing or not {position} bytes; {redo}")
    theirs = external_table(os.path.join(link_from, "model.onnx"))
    ours = {name: (tuple(p.dims), *external_span(p)) for name, p in protos.items()}
    if theirs != ours:
        differing = sorted(set(theirs.items()) ^ set(ours.items()))[:1]
        raise SystemExit(f"--link-weights {link_from}: its model.onnx lays the weights out differently "
                         f"(first difference: {differing[0][0]}); {redo}")
    os.link(source, os.path.join(out_dir, DATA_FILE))
    print(f"linked {source} ({position / 1e9:.2f} GB)", file=sys.stderr)
    return protos


def external_span(t: TensorProto) -> tuple[int, int]:
    entries = {e.key: e.value for e in t.external_data}
    return int(entries.get("offset", 0)), int(entries["length"])


def external_table(model_path: str) -> dict[str, tuple]:
    """name -> (dims, offset, length) of a model's tensors stored in its external data file."""
    model = onnx.load(model_path, load_external_data=False)
    return {t.name: (tuple(t.dims), *external_span(t)) for t in model.graph.initializer
            if t.data_location == TensorProto.EXTERNAL}


def genai_config(cfg: ModelConfig, extras: dict | None = None, paged: dict | None = None, layout: str = OURS) -> dict:
    """ONNX Runtime GenAI's schema only: GenAI (0.20.0) refuses a key it does not know, so values the graph already
    holds (rms_norm_eps, rope_theta: the norms' epsilon, the cos/sin caches) stay out; packages written before carry
    them under model.decoder and still load in the engine, which ignores them.
    extras (Hugging Face sources): eos_token_ids (one id or a list) and generation_config search defaults.
    paged (variant B): {"block_size", "max_scheduled_tokens"} -> the paged inputs and engine.dynamic_batching.
    layout genai-builder: the model builder's keys and order (make_genai_config in its builders/base.py): the session's
    log_id, position_ids when the graph takes it, every search default it writes."""
    extras = extras or {}
    search = {"max_length": cfg.context_length, "past_present_share_buffer": True, "do_sample": False,
              "temperature": 1.0, "top_k": 50, "top_p": 1.0}
    search.update(extras.get("search", {}))
    config = {
        "model": {
            "type": "llama", "bos_token_id": cfg.bos_token_id,
            "eos_token_id": extras.get("eos_token_ids", cfg.eos_token_id),
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
            },
        },
        "search": search,
    }
    if layout == GENAI_BUILDER:
        decoder = config["model"]["decoder"]
        decoder["session_options"] = {"log_id": "onnxruntime-genai", "provider_options": []}
        if takes_position_ids(cfg, layout):
            decoder["inputs"] = {"input_ids": "input_ids", "attention_mask": "attention_mask",
                                 "position_ids": "position_ids", **{k: v for k, v in decoder["inputs"].items()
                                                                    if k.startswith("past_")}}
        config["search"] = {"diversity_penalty": 0.0, "do_sample": search["do_sample"], "early_stopping": True,
                            "length_penalty": 1.0, "max_length": search["max_length"], "min_length": 0,
                            "no_repeat_ngram_size": 0, "num_beams": 1, "num_return_sequences": 1,
                            "past_present_share_buffer": True, "repetition_penalty": 1.0,
                            "temperature": search["temperature"], "top_k": search["top_k"], "top_p": search["top_p"]}
    if paged:
        inputs = config["model"]["decoder"]["inputs"]
        del inputs["attention_mask"]
        inputs.update({"cumulative_sequence_lengths": "cumulative_sequence_lengths",
                       "past_sequence_lengths": "past_sequence_lengths", "block_table": "block_table",
                       "attention_metadata": "attention_metadata"})
        config["engine"] = {"dynamic_batching": {"block_size": paged["block_size"],
                                                 "max_batch_size": PAGED_MAX_BATCH_SIZE,
                                                 "max_scheduled_tokens": paged["max_scheduled_tokens"]}}
    return config


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    quant = int4.Int4Params(args.int4_block_size, args.int4_symmetric) if args.dtype == "int4" else None
    dtype = np.dtype(args.int4_activations if quant else args.dtype)
    source = resolve_source(args)
    paged = None
    if args.attention == PAGED:
        try:
            check_paged(source.cfg, dtype, args.block_size)  # before the weights are written
        except ValueError as e:
            raise SystemExit(str(e))
        paged = {"block_size": args.block_size, "max_scheduled_tokens": args.max_scheduled_tokens}
    kv_scales = read_kv_scales(args.kv_scales, source.cfg) if args.kv_cache == "int8" else None
    os.makedirs(args.out, exist_ok=True)
    for stale in ("model.onnx", DATA_FILE, "tokenizer.model"):
        if os.path.exists(os.path.join(args.out, stale)):
            os.remove(os.path.join(args.out, stale))

    packed_qkv = args.qkv == QKV_PACKED
    weights = write_weights(source, dtype, args.out, quant, args.link_weights, packed_qkv)
    model = build_model(source.cfg, dtype, weights, quant, args.attention, args.block_size, packed_qkv, args.layout,
                        kv_scales)
    with open(os.path.join(args.out, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    with open(os.path.join(args.out, "genai_config.json"), "w") as f:
        json.dump(genai_config(source.cfg, getattr(source, "extras", None), paged, args.layout), f, indent=2)
        f.write("\n")
    tokenizer = args.tokenizer
    hf_dir = args.from_hf or args.delta
    if not tokenizer and hf_dir:
        for folder in (hf_dir, args.base):
            if folder and os.path.exists(os.path.join(folder, "tokenizer.model")):
                tokenizer = os.path.join(folder, "tokenizer.model")
                break
    if tokenizer:
        shutil.copyfile(tokenizer, os.path.join(args.out, "tokenizer.model"))
    if args.verify:
        import verify
        sys.exit(verify.run(args, source.cfg))


if __name__ == "__main__":
    main(sys.argv[1:])
