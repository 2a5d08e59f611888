"""The peer of `vicuna-batch bench --device cuda`: Hugging Face transformers serving the same random-weight
architecture (Vicuna-13B shapes, float16, on the GPU) on the same requests, the same prompt ids (BOS + SentencePiece
ids of the LLaMA tokenizer) and the same output lengths (EOS suppressed, as `bench` ignores it by default).

  python3 bench/peer_transformers.py --workload W.jsonl --tokenizer tokenizer.model [--limit 64] [--batch-size 32]
      [--mode static|generate_batch|manager] [--max-new-tokens N]

static:         batches of --batch-size in file order, left-padded; each batch runs until its longest request's
                max_tokens (what static batching does); output tokens/s counts each request's own max_tokens only.
generate_batch: transformers' continuous batching (`model.generate_batch`), one max_new_tokens for every request
                (--max-new-tokens, it has no per-request length).
manager:        the same continuous batching through its manager (`model.init_continuous_batching`), each request
                added with its own max_tokens (`add_request(..., max_new_tokens=n)`) and EOS disabled, all at t = 0,
                as `bench` runs them; the clock runs from the first add to the last result.
Prints one JSON line with the figures. Runs on the GPU machine (torch + transformers); not part of the test suite.
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
import time

import sentencepiece as spm
import torch
import transformers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

VICUNA_13B = dict(vocab_size=32000, hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                  num_attention_heads=40, num_key_value_heads=40, max_position_embeddings=2048, rms_norm_eps=1e-6,
                  bos_token_id=1, eos_token_id=2, pad_token_id=0)


def load_requests(path: str, tokenizer: str, limit: int) -> list[tuple[list[int], int]]:
    sp = spm.SentencePieceProcessor(model_file=tokenizer)
    requests = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            requests.append(([1] + sp.encode(d["prompt"]), int(d.get("max_tokens", 128))))
            if limit and len(requests) == limit:
                break
    return requests


def build_model(layers: int) -> LlamaForCausalLM:
    config = LlamaConfig(**{**VICUNA_13B, "num_hidden_layers": layers})
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    return model.eval()


@torch.inference_mode()
def run_static(model, requests, batch_size: int) -> dict:
    useful = 0
    generated = 0
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, len(requests), batch_size):
        batch = requests[i:i + batch_size]
        width = max(len(ids) for ids, _ in batch)
        steps = max(n for _, n in batch)
        ids = torch.tensor([[0] * (width - len(p)) + p for p, _ in batch], device="cuda")
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p, _ in batch], device="cuda")
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=steps, min_new_tokens=steps,
                             do_sample=False, pad_token_id=0)
        generated += (out.shape[1] - width) * len(batch)
        useful += sum(n for _, n in batch)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "output_tokens": useful, "output_tokens_per_s": round(useful / seconds, 1),
            "requests_per_s": round(len(requests) / seconds, 3), "generated_incl_padding": generated}


# not under inference_mode: generate_batch updates its paged cache in place from its own thread
@torch.no_grad()
def run_generate_batch(model, requests, max_new_tokens: int) -> dict:
    config = GenerationConfig(max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False,
                              eos_token_id=2, pad_token_id=0)
    inputs = [ids for ids, _ in requests]
    torch.cuda.synchronize()
    start = time.perf_counter()
    outputs = model.generate_batch(inputs=inputs, generation_config=config, progress_bar=False)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = sum(len(o.generated_tokens) for o in outputs.values())
    return {"seconds": round(seconds, 3), "output_tokens": tokens, "output_tokens_per_s": round(tokens / seconds, 1),
            "requests_per_s": round(len(requests) / seconds, 3)}


# as generate_batch: its loop updates the paged cache in place from its own thread
@torch.no_grad()
def run_manager(model, requests) -> dict:
    config = GenerationConfig(do_sample=False, eos_token_id=2, pad_token_id=0, max_new_tokens=max(n for _, n in requests))
    manager = model.init_continuous_batching(generation_config=config)
    params = inspect.signature(manager.add_request).parameters
    if "max_new_tokens" not in params:
        raise SystemExit(f"transformers {transformers.__version__}: add_request takes no max_new_tokens ({list(params)})")
    per_request = {"eos_token_id": -1} if "eos_token_id" in params else {}  # EOS suppressed, as bench ignores it
    if getattr(manager, "warmup", None) and not getattr(manager, "warmed_up", True):
        manager.warmup()  # CUDA graph capture outside the clock, as generate_batch does by default
    manager.start()
    try:
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i, (ids, n) in enumerate(requests):
            manager.add_request(input_ids=ids, request_id=f"r{i}", max_new_tokens=n, **per_request)
        tokens, done, failed = 0, 0, 0
        while done < len(requests):
            result = manager.get_result(timeout=60)
            if result is None:
                raise SystemExit(f"no result for 60 s after {done} of {len(requests)}")
            if result.is_finished():
                done += 1
                tokens += len(result.generated_tokens)
                failed += getattr(result, "error", None) is not None
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    finally:
        manager.stop(block=True)
    wanted = sum(n for _, n in requests)
    return {"seconds": round(seconds, 3), "output_tokens": tokens, "output_tokens_wanted": wanted, "failed": failed,
            "output_tokens_per_s": round(tokens / seconds, 1), "requests_per_s": round(len(requests) / seconds, 3),
            "eos_disabled_per_request": bool(per_request)}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--limit", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--mode", choices=["static", "generate_batch", "manager"], default="static")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--layers", type=int, default=40, help="fewer layers for a quick check of the script")
    args = ap.parse_args(argv)

    requests = load_requests(args.workload, args.tokenizer, args.limit)
    started = time.perf_counter()
    model = build_model(args.layers)
    built = time.perf_counter() - started
    # warm-up: CUDA context, cuBLAS handles, kernels compiled outside the clock
    with torch.inference_mode():
        model.generate(input_ids=torch.tensor([requests[0][0]], device="cuda"), max_new_tokens=4, do_sample=False, pad_token_id=0)
    if args.mode == "static":
        result = run_static(model, requests, args.batch_size)
    elif args.mode == "generate_batch":
        result = run_generate_batch(model, requests, args.max_new_tokens)
    else:
        result = run_manager(model, requests)
    result.update({"peer": f"transformers {transformers.__version__} {args.mode}", "torch": torch.__version__,
                   "gpu": torch.cuda.get_device_name(0), "requests": len(requests), "batch_size": args.batch_size,
                   "layers": args.layers, "model_build_s": round(built, 1),
                   "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 1)})
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
