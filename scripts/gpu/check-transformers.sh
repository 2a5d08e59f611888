#!/usr/bin/env bash
# Issue 9, part 5: model-export against transformers' own LlamaForCausalLM, on the GPU machine (its python3 has
# torch, transformers, onnx and a CPU onnxruntime; all of it runs on the CPU in float32). Runs from the repo root,
# or from a copy holding model-export/ and scripts/:
#
#   bash scripts/gpu/check-transformers.sh [transformers_check.py options]
#
# Log and per-prompt numbers under $OUT (or /tmp/out). Exit status: transformers_check.py's (0 = PASS).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
"$PY" model-export/tools/transformers_check.py --work /tmp/transformers-check --json-out "$OUT/transformers-check.json" "$@" \
  2>&1 | tee "$OUT/transformers-check.log"
exit "${PIPESTATUS[0]}"
