#!/usr/bin/env bash
# First GPU measurement of the GQA engine (issue 5): runs ON the GPU machine, from the repo root, after the
# runtime parts of ../shared/gpu/pack.sh are in /tmp/gpu-parts (or carried in .gpu/runtime).
#
#   carry: .gpu/app .gpu/setup.sh .gpuwork [.gpu/runtime/part.NN]
#   .gpuwork, made here first: echo /.gpuwork/ >> .git/info/exclude; mkdir -p .gpuwork;
#     cp ../shared/models/llama-tokenizer.model .gpuwork/tokenizer.model; cp ../shared/bench/workload-*.jsonl .gpuwork/
#   bash scripts/gpu/bench-h100.sh [STEPS]     STEPS: any of smoke seq 640 640b32 160 (default: all, in that order),
#                                             or 640:SLOTS:MAXLEN (workload-640 with --max-batch-size SLOTS
#                                             --max-sequence-length MAXLEN; workload-640 needs at most 1,131 tokens),
#                                             w64:SLOTS:MAXLEN (the first 64 requests of workload-160),
#                                             w64x128:SLOTS:MAXLEN (those 64 prompts, 128 tokens each: .gpuwork/w64x128.jsonl),
#                                             prefill-check (batched first prompts vs one slot, tiny fp16, logits),
#                                             peer-static, peer-gb (bench/peer_transformers.py on the same requests:
#                                             static batching at batch 32, and generate_batch on w64x128)
#
# Writes logs under $OUT (or /tmp/out); generates the random Vicuna-13B fp16 package into /tmp/v13 once
# (kept while the machine stays warm). Every step is bounded in time; the whole script ends before BUDGET_S.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
BUDGET_S=${BUDGET_S:-570}
START=$(date +%s)
STEPS=${*:-smoke seq 640 160}
W=.gpuwork
left() { echo $((BUDGET_S - ($(date +%s) - START))); }
log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/summary.txt"; }

bash .gpu/setup.sh >"$OUT/setup.log" 2>&1 || { cat "$OUT/setup.log"; exit 1; }
source /tmp/rt/env.sh
export DOTNET_gcServer=0
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader | tee -a "$OUT/summary.txt"
VB=(dotnet .gpu/app/vicuna-batch.dll)

# model-export runs on Debian's python3 (onnx 1.12) and on the venv's (onnx 1.23) alike
PY=/usr/bin/python3
"$PY" -c 'import numpy, onnx' 2>/dev/null || PY=$(command -v python3)
log "python: $PY"

export_model() { # name config out
  if [[ -f $3/genai_config.json ]]; then log "$3 already there"; return 0; fi
  log "export $2 -> $3"
  timeout "$4" "$PY" model-export/export.py --config "$2" --seed 0 --dtype float16 --tokenizer $W/tokenizer.model --out "$3" \
    >"$OUT/export-$1.log" 2>&1 || { log "export $2 failed rc=$?"; tail -20 "$OUT/export-$1.log"; return 1; }
  log "export $2 done ($(du -sh "$3" | cut -f1))"
}

bench() { # name timeout args...
  local name=$1 t=$2; shift 2
  local l; l=$(left)
  (( t > l - 5 )) && t=$((l - 5))
  if (( t < 30 )); then log "skip $name: ${l}s left"; return 1; fi
  log "bench $name (timeout ${t}s): $*"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader >"$OUT/mem-$name.txt"
  ( while sleep 5; do nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader; done ) >>"$OUT/mem-$name.txt" 2>&1 &
  local mon=$!
  timeout "$t" "${VB[@]}" bench --device cuda "$@" >"$OUT/bench-$name.log" 2>&1
  local rc=$?
  kill "$mon" 2>/dev/null
  log "bench $name rc=$rc; peak memory $(sort -n "$OUT/mem-$name.txt" | tail -1)"
  cat "$OUT/bench-$name.log" | tee -a "$OUT/summary.txt"
  return $rc
}

# 64 prompts x 128 tokens (the first 64 of workload-160): generate_batch takes one length for every request
[[ -f $W/w64x128.jsonl ]] || "$PY" -c 'import json,sys
for l in list(open(sys.argv[1]))[:64]: d = json.loads(l); d["max_tokens"] = 128; print(json.dumps(d))' $W/workload-160.jsonl >$W/w64x128.jsonl

for step in $STEPS; do
  case $step in
    smoke)
      export_model tiny tiny /tmp/tiny16 60 &&
        bench smoke 60 --model /tmp/tiny16 --workload $W/workload-160.jsonl --limit 8 --max-batch-size 4 ;;
    seq)
      export_model v13 vicuna-13b /tmp/v13 300 &&
        bench seq 150 --model /tmp/v13 --workload $W/workload-160.jsonl --sequential --limit 4 --max-batch-size 1 ;;
    640)
      bench 640 420 --model /tmp/v13 --workload $W/workload-640.jsonl --max-batch-size 24 ;;
    640b32)
      bench 640b32 420 --model /tmp/v13 --workload $W/workload-640.jsonl --max-batch-size 32 ;;
    160)
      bench 160 150 --model /tmp/v13 --workload $W/workload-160.jsonl --limit 64 --max-batch-size 32 ;;
    640:*:* | w64:*:* | w64x128:*:*)
      IFS=: read -r work slots maxlen <<<"$step"
      case $work in
        640) args=(--workload $W/workload-640.jsonl) ;;
        w64) args=(--workload $W/workload-160.jsonl --limit 64) ;;
        w64x128) args=(--workload $W/w64x128.jsonl) ;;
      esac
      bench "$work-s$slots-l$maxlen" 300 --model /tmp/v13 "${args[@]}" \
        --max-batch-size "$slots" --max-sequence-length "$maxlen" --max-scheduled-tokens $((slots > 512 ? slots : 512)) ;;
    prefill-check)
      # batched prefill on the CUDA kernel: the same requests on 8 slots (new prompts share calls) and on 1 slot
      export_model tiny tiny /tmp/tiny16 60 || continue
      for slots in 8 1; do
        timeout 60 "${VB[@]}" generate --device cuda --model /tmp/tiny16 --requests scripts/gpu/prefill-check.jsonl --json --logits \
          --max-batch-size $slots >"$OUT/prefill-s$slots.jsonl" 2>"$OUT/prefill-s$slots.err"
      done
      "$PY" scripts/gpu/check-prefill.py "$OUT/prefill-s8.jsonl" "$OUT/prefill-s1.jsonl" | tee -a "$OUT/summary.txt"
      rm -f "$OUT"/prefill-s*.jsonl ;;
    peer-static | peer-gb)
      t=$(left); (( t > 300 )) && t=300
      if (( t < 60 )); then log "skip $step: $(left)s left"; continue; fi
      if [[ $step == peer-static ]]; then peer=(--workload $W/workload-160.jsonl --limit 64 --batch-size 32 --mode static)
      else peer=(--workload $W/w64x128.jsonl --limit 64 --mode generate_batch --max-new-tokens 128); fi
      log "peer $step (timeout ${t}s): ${peer[*]}"
      timeout "$t" python3 bench/peer_transformers.py --tokenizer $W/tokenizer.model "${peer[@]}" >"$OUT/$step.log" 2>&1
      log "peer $step rc=$?"; tail -3 "$OUT/$step.log" | tee -a "$OUT/summary.txt" ;;
  esac
done
log "done"
