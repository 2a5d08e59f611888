"""export.py --verify: the package run by the project's engine (the C# CLI) against reference.py.

Both sides print the logits behind each greedy id (`vicuna-batch generate --requests FILE --json --logits`,
`reference.py --logits`). Per prompt: whether the greedy ids agree (or the first token where they part), and
max |delta logit| over the positions both fed the same tokens (every position up to and including the first
difference). The engine stops on eos and leaves it out of "ids" but keeps the row that chose it; reference.py
includes eos in its ids. A float32 package must agree token for token (exit 1 otherwise); float16/int4
packages only report where they part from the float64 reference.

The CLI is src/VicunaBatch.Cli/bin/{Release,Debug}/net10.0/vicuna-batch.dll (built when missing), or
$VICUNA_BATCH_CLI (a vicuna-batch.dll).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLI_PROJECT = os.path.join(REPO, "src", "VicunaBatch.Cli")


def source_args(args) -> list[str]:
    if args.from_llama2c:
        return ["--from-llama2c", args.from_llama2c]
    if args.from_hf:
        return ["--from-hf", args.from_hf]
    if args.delta:
        return ["--base", args.base, "--delta", args.delta]
    extra = [a for flag, v in (("--vocab-size", args.vocab_size), ("--context-length", args.context_length)) if v
             for a in (flag, str(v))]
    return ["--config", args.config, "--seed", str(args.seed), *extra]


def find_cli() -> list[str]:
    dotnet = shutil.which("dotnet")
    if not dotnet:
        raise SystemExit("--verify needs the .NET SDK (dotnet) to run the engine; install it or drop --verify")
    given = os.environ.get("VICUNA_BATCH_CLI")
    if given:
        return [dotnet, given]
    for config in ("Release", "Debug"):
        dll = os.path.join(CLI_PROJECT, "bin", config, "net10.0", "vicuna-batch.dll")
        if os.path.exists(dll):
            return [dotnet, dll]
    print("verify: building the CLI (dotnet build src/VicunaBatch.Cli -c Release)", file=sys.stderr)
    subprocess.run([dotnet, "build", CLI_PROJECT, "-c", "Release", "--nologo", "-v", "q"], check=True)
    return [dotnet, os.path.join(CLI_PROJECT, "bin", "Release", "net10.0", "vicuna-batch.dll")]


def default_prompts(vocab: int, bos: int) -> list[list[int]]:
    return [[bos], [bos, vocab // 3, vocab // 2, vocab - 1, 3]]


@dataclasses.dataclass
class Comparison:
    same: bool
    first_difference: int      # index of the first differing id (= the shorter length when one is a prefix)
    positions: int             # positions compared: 0 .. first_difference, where both have logits
    max_abs_delta: float       # max |engine - reference| logit over those positions
    max_abs_logit: float       # max |reference logit| over those positions (the scale of the error)


def compare(engine_ids: list[int], engine_logits: list[list[float]], ref_ids: list[int],
            ref_logits: list[list[float]]) -> Comparison:
    """engine_ids / ref_ids: every sampled id (eos included when it was sampled); logits[i] chose ids[i]."""
    first = next((j for j, (a, b) in enumerate(zip(engine_ids, ref_ids)) if a != b), min(len(engine_ids), len(ref_ids)))
    n = min(first + 1, len(engine_logits), len(ref_logits))
    if n == 0:
        return Comparison(engine_ids == ref_ids, first, 0, 0.0, 0.0)
    got = np.asarray(engine_logits[:n], np.float64)     # [n, vocab]
    want = np.asarray(ref_logits[:n], np.float64)       # [n, vocab]
    return Comparison(engine_ids == ref_ids, first, n, float(np.abs(got - want).max()), float(np.abs(want).max()))


def plural(n: int) -> str:
    return f"{n} position" if n == 1 else f"{n} positions"


def run_engine(package: str, prompts: list[list[int]], n: int, tmp: str) -> dict[str, dict]:
    requests = os.path.join(tmp, "requests.jsonl")
    with open(requests, "w") as f:
        for i, p in enumerate(prompts):
            f.write(json.dumps({"id": f"p{i}", "prompt_ids": p, "max_tokens": n}) + "\n")
    engine = subprocess.run([*find_cli(), "generate", "--model", package, "--requests", requests, "--json", "--logits"],
                            capture_output=True, text=True)
    if engine.returncode != 0:
        print(engine.stderr, file=sys.stderr)
        raise SystemExit(f"verify: the engine exited with {engine.returncode}")
    return {r["id"]: r for r in map(json.loads, filter(str.strip, engine.stdout.splitlines()))}


def run_reference(args, prompts: list[list[int]], n: int, tmp: str) -> list[dict]:
    prompts_file = os.path.join(tmp, "prompts.txt")
    with open(prompts_file, "w") as f:
        f.write("\n".join(",".join(map(str, p)) for p in prompts) + "\n")
    ref = subprocess.run([sys.executable, os.path.join(HERE, "reference.py"), *source_args(args),
                          "--prompts-file", prompts_file, "--max-tokens", str(n), "--logits"],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in ref.splitlines() if line.strip()]


def run(args, cfg) -> int:
    prompts = [[int(t) for t in p.split(",")] for p in args.verify_prompts.split(";")] if args.verify_prompts \
        else default_prompts(cfg.vocab_size, cfg.bos_token_id)
    n = args.verify_max_tokens
    with tempfile.TemporaryDirectory() as tmp:
        expected = run_reference(args, prompts, n, tmp)
        actual = run_engine(args.out, prompts, n, tmp)

    eos = cfg.eos_token_id
    agree, positions, worst, scale = 0, 0, 0.0, 0.0
    for i, (prompt, ref) in enumerate(zip(prompts, expected)):
        got = actual.get(f"p{i}", {"ids": [], "logits": []})
        # the engine's last logits row chose eos when it stopped there; "ids" leaves eos out
        engine_ids = got["ids"] + [eos] if len(got.get("logits") or []) > len(got["ids"]) else got["ids"]
        c = compare(engine_ids, got.get("logits") or [], ref["ids"], ref["logits"])
        agree += c.same
        positions += c.positions
        worst, scale = max(worst, c.max_abs_delta), max(scale, c.max_abs_logit)
        state = f"agree on {len(ref['ids'])} ids" if c.same else \
            f"differ from token {c.first_difference} (engine {engine_ids}, reference {ref['ids']})"
        print(f"verify: prompt {prompt}: {state}; max |delta logit| {c.max_abs_delta:.3g} over {plural(c.positions)}")
    print(f"verify: greedy ids agree on {agree}/{len(prompts)} prompts ({n} tokens); "
          f"max |delta logit| {worst:.3g} over {plural(positions)} (max |logit| {scale:.3g}); "
          f"{args.dtype} package vs float64 reference")
    strict = args.dtype == "float32"
    if agree < len(prompts) and not strict:
        print(f"verify: {args.dtype} may part from the float64 reference; not an error", file=sys.stderr)
    return 1 if strict and agree < len(prompts) else 0
