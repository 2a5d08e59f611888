#!/usr/bin/env bash
# Issue 23 on the GPU: log probabilities taken by logprobs.onnx where the logits are (runs ON the GPU machine, from the
# repo root, like scripts/gpu/bench-h100.sh; about 2-3 minutes, bounded by BUDGET_S).
#
#   here:  ../shared/gpu/pack.sh src/VicunaBatch.Cli/VicunaBatch.Cli.csproj
#          echo /.gpuwork/ >> .git/info/exclude; mkdir -p .gpuwork
#          cp ../shared/models/llama-tokenizer.model .gpuwork/tokenizer.model; cp ../shared/bench/workload-160.jsonl .gpuwork/
#   there: carry .gpu/app .gpu/setup.sh .gpuwork (and .gpu/runtime/part.NN as pack.sh prints), then
#          bash scripts/gpu/logprobs-check.sh
#
# 1. bench on CUDA, the tiny architecture in float16 with the LLaMA tokenizer (32,000 tokens; variant A, and B paged),
#    the first 64 of workload-160: without logprobs, with --top-logprobs 20 (auto: in the graph), the same with
#    --sampling host (rows copied down, TokenLogprobs.Of), and sampled (T 0.8, top-p 0.9) with --top-logprobs 20.
#    Prints per run the logits rows copied to the host per step (0 for logprobs requests in the graph), the mean step
#    time and the logprobs graph's time. With /tmp/v13 there already (bench-h100.sh's Vicuna-13B fp16, kept while the
#    machine stays warm) the same for it, first 32 requests.
# 2. generate scripts/gpu/prefill-check.jsonl with --top-logprobs 20 on both variants, --sampling graph against
#    --sampling host, greedy and sampled: scripts/gpu/check-logprobs.py compares the graph's log probabilities with the
#    host's (tolerance 1e-4; top ids in the same order but within exact ties).
# ROUNDS=N repeats the bench runs N times, interleaved; CHECKS=0 skips the generate comparisons.
# Logs under $OUT (or /tmp/out), the table last in $OUT/summary.txt.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
BUDGET_S=${BUDGET_S:-230}
START=$(date +%s)
W=.gpuwork
left() { echo $((BUDGET_S - ($(date +%s) - START))); }
log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/summary.txt"; }

bash .gpu/setup.sh >"$OUT/setup.log" 2>&1 || { cat "$OUT/setup.log"; exit 1; }
source /tmp/rt/env.sh
export DOTNET_gcServer=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/summary.txt"
VB=(dotnet .gpu/app/vicuna-batch.dll)
PY=/usr/bin/python3
"$PY" -c 'import numpy, onnx' 2>/dev/null || PY=$(command -v python3)

export_tiny() { # out [export.py args]
  local out=$1; shift
  [[ -f $out/genai_config.json ]] && return 0
  timeout 60 "$PY" model-export/export.py --config tiny --seed 0 --dtype float16 --tokenizer $W/tokenizer.model --out "$out" "$@" \
    >"$OUT/export-$(basename "$out").log" 2>&1 || { log "export $out failed"; tail -5 "$OUT/export-$(basename "$out").log"; return 1; }
}
export_tiny /tmp/tiny16 && export_tiny /tmp/tiny16p256 --attention paged --block-size 256 || exit 1

ROWS=()
bench() { # name model limit args...
  local name=$1 model=$2 limit=$3; shift 3
  if (( $(left) < 40 )); then log "skip $name: $(left)s left"; return 1; fi
  timeout 90 "${VB[@]}" bench --device cuda --model "$model" --workload $W/workload-160.jsonl --limit "$limit" --json "$@" \
    >"$OUT/bench-$name.json" 2>"$OUT/bench-$name.err" || { log "bench $name failed"; tail -5 "$OUT/bench-$name.err" | tee -a "$OUT/summary.txt"; return 1; }
  ROWS+=("$("$PY" -c 'import json, sys; d = json.load(open(sys.argv[2]))
print("%-24s %9.2f %9.2f %10.3f %9.1f %6d" % (sys.argv[1], d["logit_rows_per_step"], d["mean_step_ms"],
      d.get("graph_logprob_ms", 0) / d["steps"], d["output_tokens_per_s"], d["errors"]))' "$name" "$OUT/bench-$name.json")")
}
for round in $(seq 1 "${ROUNDS:-1}"); do # ROUNDS > 1: the runs interleaved, round after round (names end in -rN)
  r=$([[ ${ROUNDS:-1} -gt 1 ]] && echo "-r$round")
  for variant in a:/tmp/tiny16 b:/tmp/tiny16p256; do
    v=${variant%%:*}; model=${variant#*:}
    bench "$v-greedy$r" "$model" 64
    bench "$v-greedy-lp20$r" "$model" 64 --top-logprobs 20
    bench "$v-greedy-lp20-host$r" "$model" 64 --top-logprobs 20 --sampling host
    bench "$v-sampled-lp20$r" "$model" 64 --top-logprobs 20 --temperature 0.8 --top-p 0.9
  done
done
if [[ -f /tmp/v13/genai_config.json ]]; then
  bench v13-greedy /tmp/v13 32 --max-sequence-length 1152
  bench v13-greedy-lp20 /tmp/v13 32 --max-sequence-length 1152 --top-logprobs 20
  bench v13-greedy-lp20-host /tmp/v13 32 --max-sequence-length 1152 --top-logprobs 20 --sampling host
fi

for variant in a:/tmp/tiny16 b:/tmp/tiny16p256; do
  [[ ${CHECKS:-1} == 0 ]] && break # CHECKS=0: the bench runs only
  v=${variant%%:*}; model=${variant#*:}
  for kind in greedy sampled; do
    sampling=(); [[ $kind == sampled ]] && sampling=(--temperature 0.8 --top-p 0.9 --seed 7)
    for how in graph host; do
      timeout 60 "${VB[@]}" generate --device cuda --model "$model" --requests scripts/gpu/prefill-check.jsonl --json --top-logprobs 20 \
        --max-batch-size 8 "${sampling[@]}" --sampling $how >"$OUT/lp-$v-$kind-$how.jsonl" 2>"$OUT/lp-$v-$kind-$how.err" ||
        { log "generate lp-$v-$kind-$how failed"; tail -5 "$OUT/lp-$v-$kind-$how.err" | tee -a "$OUT/summary.txt"; }
    done
    "$PY" scripts/gpu/check-logprobs.py "$OUT/lp-$v-$kind-host.jsonl" "$OUT/lp-$v-$kind-graph.jsonl" --label "logprobs check $v $kind" \
      --tolerance 1e-4 | tee "$OUT/logprobs-check-$v-$kind.txt" | tail -1 | tee -a "$OUT/summary.txt"
  done
done

{
  echo
  printf '%-24s %9s %9s %10s %9s %6s\n' run "rows/step" "step ms" "lp ms/step" "tok/s" errors
  printf '%s\n' "${ROWS[@]}"
} | tee -a "$OUT/summary.txt"
log "done"
