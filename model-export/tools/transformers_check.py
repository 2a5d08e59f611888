#!/usr/bin/env python3
"""model-export against transformers' own LlamaForCausalLM (issue 9, part 5).

Runs where torch, transformers, onnx and onnxruntime are installed (the GPU machine's python3; see
scripts/gpu/check-transformers.sh). Everything runs on the CPU in float32: this checks conventions, not speed.

Per config (2 layers, GQA, non-default rms_norm_eps and rope_theta; one untied with head 32, rotary inside
GroupQueryAttention; one tied with head 8, rotary outside it): a random LlamaForCausalLM, its weights re-drawn
at unit scale (transformers' 0.02 init gives near-zero logits that hide errors), save_pretrained (safetensors),
export.py --from-hf (float32), an onnxruntime InferenceSession on model.onnx. Per prompt:
- transformers greedy: a full forward of the whole sequence per token;
- package greedy: one prefill of the prompt, then one-token decodes over its present KV;
- decode |delta logit|: at every position both sequences were fed the same tokens (prefill rows for the
  prompt, decode rows after it), against transformers' forward over its greedy sequence;
- teacher-forced |delta logit|: transformers' greedy sequence in one package prefill, every position.
Exit 1 when greedy ids differ or any |delta logit| exceeds --tolerance (1e-3).

  python3 model-export/tools/transformers_check.py [--work DIR] [--max-tokens 12] [--tolerance 1e-3]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import traceback

import numpy as np

EXPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "export.py")

CONFIGS = [
    {"name": "head32-untied", "vocab_size": 1000, "hidden_size": 128, "intermediate_size": 344,
     "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 1000.0,
     "tie_word_embeddings": False},
    {"name": "head8-tied", "vocab_size": 512, "hidden_size": 64, "intermediate_size": 172,
     "num_attention_heads": 8, "num_key_value_heads": 4, "rms_norm_eps": 3e-6, "rope_theta": 50000.0,
     "tie_word_embeddings": True},
]
PROMPT_LENGTHS = [1, 4, 17, 60]


def versions() -> str:
    import onnx
    import onnxruntime
    import torch
    import transformers
    return (f"python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
            f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, numpy {np.__version__}")


def make_model(spec: dict, seed: int):
    """A random LlamaForCausalLM in float32, weights at unit scale, eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    kw = {k: v for k, v in spec.items() if k not in ("name", "rope_theta")}
    kw.update(num_hidden_layers=2, max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    try:   # transformers >= 5
        config = LlamaConfig(**kw, rope_parameters={"rope_type": "default", "rope_theta": spec["rope_theta"]})
    except TypeError:
        config = LlamaConfig(**kw, rope_theta=spec["rope_theta"])
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).float().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():   # a tied lm_head is embed_tokens: listed once
            noise = torch.randn(p.shape, generator=g)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * noise)                     # [hidden]: not all ones, so the weight is exercised
            elif "embed_tokens" in name:
                p.copy_(noise)                                 # [vocab, hidden]
            else:
                p.copy_(noise / math.sqrt(p.shape[1]))         # Linear [out, in]
    hd = spec["hidden_size"] // spec["num_attention_heads"]
    want = 1.0 / spec["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    got = model.model.rotary_emb.inv_freq.double().numpy()
    if not np.allclose(got, want, rtol=1e-6):   # the model must run the theta the config says
        raise RuntimeError(f"transformers' inv_freq {got[:3]}... is not theta {spec['rope_theta']}'s {want[:3]}...")
    return model


def hf_logits(model, ids: list[int]) -> np.ndarray:
    import torch
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False)
    return out.logits[0].double().numpy()                    # [S, vocab]


def hf_greedy(model, prompt: list[int], n: int) -> list[int]:
    seq = list(prompt)
    for _ in range(n):
        seq.append(int(np.argmax(hf_logits(model, seq)[-1])))
    return seq


class Package:
    """model.onnx through onnxruntime's CPU provider; past/present KV as separate arrays (no shared buffer)."""

    def __init__(self, folder: str):
        import onnxruntime as ort
        with open(os.path.join(folder, "genai_config.json")) as f:
            decoder = json.load(f)["model"]["decoder"]
        self.layers, self.kv_heads, self.head = (decoder["num_hidden_layers"], decoder["num_key_value_heads"],
                                                 decoder["head_size"])
        self.session = ort.InferenceSession(os.path.join(folder, "model.onnx"), providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]

    def empty_past(self) -> list[tuple[np.ndarray, np.ndarray]]:
        shape = (1, self.kv_heads, 0, self.head)                 # [B, KVH, P, hd]
        return [(np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in range(self.layers)]

    def run(self, ids: list[int], past) -> tuple[np.ndarray, list]:
        """ids after past: logits [S, vocab] and the presents [1, KVH, P + S, hd]."""
        total = past[0][0].shape[2] + len(ids)
        feeds = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, total), np.int64)}
        for i, (k, v) in enumerate(past):
            feeds[f"past_key_values.{i}.key"], feeds[f"past_key_values.{i}.value"] = k, v
        out = dict(zip(self.outputs, self.session.run(None, feeds)))
        present = [(out[f"present.{i}.key"], out[f"present.{i}.value"]) for i in range(self.layers)]
        return out["logits"][0].astype(np.float64), present

    def greedy(self, prompt: list[int], n: int) -> tuple[list[int], np.ndarray]:
        """Prefill, then one-token decodes: the sequence and the logits at each of its positions [len - 1, vocab]."""
        logits, past = self.run(prompt, self.empty_past())
        rows, seq = [logits], list(prompt)
        for step in range(n):
            seq.append(int(np.argmax(rows[-1][-1])))
            if step + 1 < n:
                logits, past = self.run([seq[-1]], past)
                rows.append(logits)
        return seq, np.concatenate(rows)


def check_config(spec: dict, seed: int, work: str, n: int) -> list[dict]:
    model = make_model(spec, seed)
    hf_dir, pkg = os.path.join(work, spec["name"], "hf"), os.path.join(work, spec["name"], "package")
    model.save_pretrained(hf_dir)
    with open(os.path.join(hf_dir, "config.json")) as f:
        config = json.load(f)
    saved = sorted(os.listdir(hf_dir))
    print(f"  save_pretrained: {saved}; config.json rope {config.get('rope_parameters', config.get('rope_theta'))}, "
          f"rms_norm_eps {config.get('rms_norm_eps')}, tie_word_embeddings {config.get('tie_word_embeddings')}")
    if not any(name.endswith(".safetensors") for name in saved):
        raise RuntimeError(f"save_pretrained wrote no safetensors: {saved}")
    subprocess.run([sys.executable, EXPORT, "--from-hf", hf_dir, "--out", pkg, "--dtype", "float32"], check=True)
    package = Package(pkg)

    rng = np.random.default_rng(seed)
    results = []
    for length in PROMPT_LENGTHS:
        prompt = [1] + [int(t) for t in rng.integers(3, spec["vocab_size"], length - 1)]
        hf_seq = hf_greedy(model, prompt, n)
        want = hf_logits(model, hf_seq[:-1])                     # [len - 1, vocab]: position p chose hf_seq[p + 1]
        ort_seq, ort_rows = package.greedy(prompt, n)
        same_until = next((p for p in range(len(hf_seq)) if hf_seq[p] != ort_seq[p]), len(hf_seq))
        fed_same = min(same_until, len(want))                    # positions whose inputs agree
        decode = float(np.abs(ort_rows[:fed_same] - want[:fed_same]).max())
        forced_rows, _ = package.run(hf_seq[:-1], package.empty_past())
        forced = float(np.abs(forced_rows - want).max())
        results.append({"config": spec["name"], "prompt_length": length, "greedy_agree": hf_seq == ort_seq,
                        "generated": n, "positions": fed_same, "max_abs_delta_decode": decode,
                        "max_abs_delta_teacher_forced": forced, "max_abs_logit": float(np.abs(want).max())})
        r = results[-1]
        agree = "agree" if r["greedy_agree"] else f"differ from position {same_until}"
        print(f"  prompt of {length:2d}: greedy ids {agree} ({n} generated); max |delta logit| "
              f"decode {decode:.3g} over {fed_same} positions, teacher-forced {forced:.3g} over {len(want)}; "
              f"max |logit| {r['max_abs_logit']:.3g}", flush=True)
    return results


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/transformers-check", help="checkpoints and packages go here")
    ap.add_argument("--max-tokens", type=int, default=12, help="greedy tokens per prompt")
    ap.add_argument("--tolerance", type=float, default=1e-3, help="max |delta logit| allowed (float32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", help="also write every prompt's numbers here")
    args = ap.parse_args(argv)

    print(f"transformers_check: {versions()}", flush=True)
    results, failed = [], []
    for spec in CONFIGS:
        hd = spec["hidden_size"] // spec["num_attention_heads"]
        print(f"transformers_check: {spec['name']}: vocab {spec['vocab_size']}, hidden {spec['hidden_size']}, 2 layers, "
              f"{spec['num_attention_heads']} heads / {spec['num_key_value_heads']} kv heads (head {hd}), "
              f"rms_norm_eps {spec['rms_norm_eps']}, rope_theta {spec['rope_theta']}, "
              f"{'tied' if spec['tie_word_embeddings'] else 'untied'}", flush=True)
        try:
            results += check_config(spec, args.seed, args.work, args.max_tokens)
        except Exception:   # report it and go on with the next config
            traceback.print_exc()
            failed.append(spec["name"])
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)
    worst = max((max(r["max_abs_delta_decode"], r["max_abs_delta_teacher_forced"]) for r in results), default=math.inf)
    agree = sum(r["greedy_agree"] for r in results)
    ok = not failed and agree == len(results) and worst <= args.tolerance
    print(f"transformers_check: {'PASS' if ok else 'FAIL'}: greedy ids agree on {agree}/{len(results)} prompts; "
          f"max |delta logit| {worst:.3g} (tolerance {args.tolerance:g}, float32)"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
