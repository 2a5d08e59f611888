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
#                                             greedy-check (variants A and B, tiny fp16: greedy ids from the graph, logits
#                                             left on the device, against the host argmax of copied logits rows; same slots),
#                                             640nog:SLOTS:MAXLEN, w64nog:SLOTS:MAXLEN (as 640:…, w64:… on a copy of the
#                                             package without greedy_ids: every logits row copied down, as before that output),
#                                             seqsep, 640sep:SLOTS:MAXLEN, w64sep:SLOTS:MAXLEN (as seq, 640:…, w64:… on the
#                                             13B exported with --qkv separate: three q, k, v MatMuls a layer, not one),
#                                             fork-check (n choices sharing one prefill on the device, variants A and B,
#                                             against the choices as separate requests; bench --choices 8 vs --separate-choices),
#                                             prefix-check (variant B, tiny fp16, blocks of 16 and 256: requests sharing a
#                                             600-token prefix, greedy ids and logits with --prefix-cache on against off, and
#                                             bench of 16 text prompts of one long prefix, on and off: prefill tokens computed
#                                             and prompt tokens taken from the cache),
#                                             paged-check (variant B vs variant A, tiny fp16, same seed: greedy ids and logits;
#                                             block 256 flash, block 16 fallback with preemption by recompute and by swap
#                                             to host memory, chunked mixed steps),
#                                             640paged:BLOCKSIZE / w64paged:BLOCKSIZE (Vicuna-13B fp16 as variant B, e.g. 128 or
#                                             256: workload-640, or the first 64 of workload-160; KV blocks fitted to memory),
#                                             sample-check (variants A and B, tiny fp16, temperature $SAMPLE_T (0.8) top-p 0.9 seeded:
#                                             tokens drawn by sampler.onnx on the device against the host sampler's),
#                                             640s-SITE:SLOTS:MAXLEN, 640pageds-SITE:BLOCKSIZE (workload-640 as 640:… or
#                                             640paged:…, every request sampled at temperature 0.8, top-p 0.9, with
#                                             --sampling SITE: graph or host),
#                                             graph-check, graph-check-v13 (variant A, tiny fp16 or Vicuna-13B fp16: greedy
#                                             tokens and logits with --cuda-graphs on against off; 8 requests on 8 slots,
#                                             16 tokens a step: decode calls of 1 to 8 rows),
#                                             peaks (or bandwidth: the card's copy bandwidth and float16 matmul rate,
#                                             scripts/gpu/device-peaks.py, and the 13B package's weight-read floor and
#                                             what cuBLAS takes for its step's weight products at 1-256 rows; every
#                                             bench step after it prints its roofline fractions against them),
#                                             640paged8:BLOCKSIZE (as 640paged:…, the KV blocks int8: export.py --kv-cache int8),
#                                             kv8-check (tiny fp16, variant B: int8 KV blocks, scales by kv_scales.py, against
#                                             float16 ones: greedy ids and logits of the same requests),
#                                             640pagedod:BLOCKSIZE (as 640paged:…, admission on demand: preempted requests
#                                             swapped to host memory where it pays (--kv-swap-space 4 GiB), else recomputed),
#                                             640pagedod0:BLOCKSIZE (on demand, recompute only: --kv-swap-space 0, the rule
#                                             before --kv-admission reserve),
#                                             prefill:BLOCKSIZE (variant B, prefill-heavy: 256 prompts of 16 consecutive
#                                             workload-640 prompts each, ~820 tokens, 16 tokens out: the matmul rate),
#                                             peer-cb (transformers' continuous batching on workload-640 with each request's
#                                             own max_tokens: bench/peer_transformers.py --mode manager),
#                                             ab-check (the build before, .gpu/app-old, against this one: generate outputs of
#                                             variants A and B compared at tolerance 0, a repeat of this build as the control),
#                                             ab-cpu160:CPUS:ROUNDS[:THREADS] (bench and run of workload-160 on the CPU, the
#                                             build before against this one, interleaved),
#                                             cpu160:CPUS:ROUNDS[:THREADS] (issue 3 on this machine's CPU: run against bench,
#                                             workload-160, the committed tiny model, ROUNDS interleaved rounds, under taskset -c
#                                             CPUS or all, --threads THREADS),
#                                             peer-static, peer-gb (bench/peer_transformers.py on the same requests:
#                                             static batching at batch 32, and generate_batch on w64x128)
#
# VB_EXTRA: more arguments for every bench step (e.g. VB_EXTRA="--cuda-graphs off").
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

export_model() { # name config out timeout [export.py args: --attention paged --block-size N --link-weights DIR]
  local name=$1 config=$2 out=$3 t=$4; shift 4
  if [[ -f $out/genai_config.json ]]; then log "$out already there"; return 0; fi
  log "export $config -> $out $*"
  timeout "$t" "$PY" model-export/export.py --config "$config" --seed 0 --dtype float16 --tokenizer $W/tokenizer.model --out "$out" "$@" \
    >"$OUT/export-$name.log" 2>&1 || { log "export $config failed rc=$?"; tail -20 "$OUT/export-$name.log"; return 1; }
  log "export $config done ($(du -sh "$out" | cut -f1))"
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
  local peaks=()
  [[ -n ${COPY_GBPS:-} ]] && peaks=(--copy-bandwidth "$COPY_GBPS" --matmul-tflops "$MATMUL_TFLOPS")
  # shellcheck disable=SC2086 # VB_EXTRA is a list of arguments
  timeout "$t" "${VB[@]}" bench --device cuda "$@" "${peaks[@]}" ${VB_EXTRA:-} >"$OUT/bench-$name.log" 2>&1
  local rc=$?
  kill "$mon" 2>/dev/null
  log "bench $name rc=$rc; peak memory $(sort -n "$OUT/mem-$name.txt" | tail -1)"
  cat "$OUT/bench-$name.log" | tee -a "$OUT/summary.txt"
  return $rc
}

engine_640() { # STEP-NAME SIZE: the model and engine settings of the run640/bench640 steps, in eng=(...)
  local work=$1 size=$2
  export_model v13 vicuna-13b /tmp/v13 300 || return 1
  if [[ $work == *paged ]]; then
    export_model "v13p$size" vicuna-13b "/tmp/v13p$size" 120 --attention paged --block-size "$size" --link-weights /tmp/v13 || return 1
    eng=(--model "/tmp/v13p$size" --max-batch-size 256 --max-scheduled-tokens 2048 --max-sequence-length 1152)
  else
    eng=(--model /tmp/v13 --max-batch-size "$size" --max-sequence-length 1152 --max-scheduled-tokens 512)
  fi
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
    seqsep)
      export_model v13sep vicuna-13b /tmp/v13sep 300 --qkv separate &&
        bench seqsep 150 --model /tmp/v13sep --workload $W/workload-160.jsonl --sequential --limit 4 --max-batch-size 1 ;;
    640)
      bench 640 420 --model /tmp/v13 --workload $W/workload-640.jsonl --max-batch-size 24 ;;
    640b32)
      bench 640b32 420 --model /tmp/v13 --workload $W/workload-640.jsonl --max-batch-size 32 ;;
    160)
      bench 160 150 --model /tmp/v13 --workload $W/workload-160.jsonl --limit 64 --max-batch-size 32 ;;
    640:*:* | 640nog:*:* | 640sep:*:* | w64:*:* | w64nog:*:* | w64sep:*:* | w64x128:*:* | 640s-*:*:*)
      IFS=: read -r work slots maxlen <<<"$step"
      export_model v13 vicuna-13b /tmp/v13 300 || continue
      model=/tmp/v13
      if [[ $work == *sep ]]; then
        model=/tmp/v13sep
        export_model v13sep vicuna-13b $model 300 --qkv separate || continue
      fi
      if [[ $work == *nog ]]; then
        model=/tmp/v13nog
        [[ -f $model/genai_config.json ]] || "$PY" model-export/tools/strip_output.py /tmp/v13 $model greedy_ids || continue
      fi
      case $work in
        640 | 640nog | 640sep) args=(--workload $W/workload-640.jsonl) ;;
        w64 | w64nog | w64sep) args=(--workload $W/workload-160.jsonl --limit 64) ;;
        w64x128) args=(--workload $W/w64x128.jsonl) ;;
        640s-*) args=(--workload $W/workload-640.jsonl --temperature 0.8 --top-p 0.9 --sampling "${work#640s-}") ;;
      esac
      bench "$work-s$slots-l$maxlen" 300 --model $model "${args[@]}" \
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
    greedy-check)
      # both variants: greedy ids from the graph (logits left on the device) against the host argmax of copied rows
      export_model tiny tiny /tmp/tiny16 60 && export_model tinyp256 tiny /tmp/tiny16p256 60 --attention paged --block-size 256 || continue
      for variant in a:/tmp/tiny16 b:/tmp/tiny16p256; do
        name=${variant%%:*}; model=${variant#*:}
        for how in graph host; do
          timeout 60 "${VB[@]}" generate --device cuda --model "$model" --requests scripts/gpu/prefill-check.jsonl --json \
            $([[ $how == host ]] && echo --logits) --max-batch-size 8 >"$OUT/greedy-$name-$how.jsonl" 2>"$OUT/greedy-$name-$how.err"
          log "generate greedy-$name-$how rc=$?"
        done
        "$PY" scripts/gpu/check-prefill.py "$OUT/greedy-$name-host.jsonl" "$OUT/greedy-$name-graph.jsonl" --label "greedy check $name" \
          --tolerance 0 | tee "$OUT/greedy-check-$name.txt" | tail -1 | tee -a "$OUT/summary.txt"
      done
      rm -f "$OUT"/greedy-*.jsonl ;;
    graph-check | graph-check-v13)
      # decode calls replayed as CUDA graphs (padded to power-of-two buckets, mask as wide as a slot) against plain calls
      if [[ $step == graph-check ]]; then export_model tiny tiny /tmp/tiny16 60 || continue; model=/tmp/tiny16
      else export_model v13 vicuna-13b /tmp/v13 300 || continue; model=/tmp/v13; fi
      for how in plain graphs; do
        timeout 120 "${VB[@]}" generate --device cuda --model $model --requests scripts/gpu/prefill-check.jsonl --json --logits \
          --max-batch-size 8 --max-scheduled-tokens 16 --max-sequence-length 256 --cuda-graphs $([[ $how == graphs ]] && echo on || echo off) >"$OUT/graph-$how.jsonl" 2>"$OUT/graph-$how.err"
        rc=$?; log "generate graph-$how rc=$rc"; (( rc == 0 )) || tail -5 "$OUT/graph-$how.err" | tee -a "$OUT/summary.txt"
      done
      "$PY" scripts/gpu/check-prefill.py "$OUT/graph-plain.jsonl" "$OUT/graph-graphs.jsonl" --label "$step" --tolerance 0.02 \
        | tee "$OUT/$step.txt" | tail -1 | tee -a "$OUT/summary.txt"
      rm -f "$OUT"/graph-*.jsonl ;;
    sample-check)
      # both variants: tokens sampled by sampler.onnx over the device logits against the host sampler's, same seeds
      export_model tiny tiny /tmp/tiny16 60 && export_model tinyp256 tiny /tmp/tiny16p256 60 --attention paged --block-size 256 || continue
      for variant in a:/tmp/tiny16 b:/tmp/tiny16p256; do
        name=${variant%%:*}; model=${variant#*:}
        for how in graph host greedy; do
          sampling=(--temperature "${SAMPLE_T:-0.8}" --top-p 0.9 --seed 7 --sampling $how)
          [[ $how == greedy ]] && sampling=()
          timeout 60 "${VB[@]}" generate --device cuda --model "$model" --requests scripts/gpu/prefill-check.jsonl --json \
            "${sampling[@]}" --max-batch-size 8 >"$OUT/sample-$name-$how.jsonl" 2>"$OUT/sample-$name-$how.err"
          log "generate sample-$name-$how rc=$?"
        done
        "$PY" scripts/gpu/check-prefill.py "$OUT/sample-$name-host.jsonl" "$OUT/sample-$name-graph.jsonl" --label "sample check $name T=${SAMPLE_T:-0.8}" \
          --tolerance 0 | tee "$OUT/sample-check-$name.txt" | tail -1 | tee -a "$OUT/summary.txt"
        # they did sample: few requests keep the greedy tokens
        "$PY" scripts/gpu/check-prefill.py "$OUT/sample-$name-greedy.jsonl" "$OUT/sample-$name-graph.jsonl" --label "greedy vs sampled $name" \
          | tail -1 | tee -a "$OUT/summary.txt"
      done
      rm -f "$OUT"/sample-*.jsonl ;;
    fork-check)
      # n choices sharing one prefill (a KV fork: device-to-device copies of a slot, or of a block's filled rows with
      # the whole blocks shared) against the same choices as requests of their own: greedy (every choice = the one
      # greedy run) and seeded (choice c = the request of seed + c). Variant A, B block 256 (prompts end inside the
      # first block: rows copied), B block 16 (an 18-token prompt: one block shared, two rows copied). Then bench of
      # long prompts x 8 choices, shared against --separate-choices, on variant A.
      export_model tiny tiny /tmp/tiny16 60 &&
        export_model tinyp256 tiny /tmp/tiny16p256 60 --attention paged --block-size 256 &&
        export_model tinyp16 tiny /tmp/tiny16p16 60 --attention paged --block-size 16 || continue
      "$PY" scripts/gpu/fork-check.py make scripts/gpu/prefill-check.jsonl $W/fork-forked.jsonl $W/fork-separate.jsonl
      for variant in a:/tmp/tiny16 b256:/tmp/tiny16p256 b16:/tmp/tiny16p16; do
        name=${variant%%:*}; model=${variant#*:}
        for how in forked separate; do
          timeout 90 "${VB[@]}" generate --device cuda --model "$model" --requests $W/fork-$how.jsonl --json --max-batch-size 32 \
            >"$OUT/fork-$name-$how.jsonl" 2>"$OUT/fork-$name-$how.err"
          rc=$?; log "generate fork-$name-$how rc=$rc"; (( rc == 0 )) || tail -5 "$OUT/fork-$name-$how.err" | tee -a "$OUT/summary.txt"
        done
        "$PY" scripts/gpu/fork-check.py compare "$OUT/fork-$name-forked.jsonl" "$OUT/fork-$name-separate.jsonl" --label "fork check $name" \
          | tee "$OUT/fork-check-$name.txt" | tail -1 | tee -a "$OUT/summary.txt"
      done
      rm -f "$OUT"/fork-*.jsonl
      "$PY" -c 'import json
text = open("model-export/tiny-corpus.txt").read()
for i in range(16): print(json.dumps({"custom_id": f"doc-{i}", "prompt": text[i * 1500:(i + 1) * 1500], "max_tokens": 16}))' >$W/long16.jsonl
      for how in shared separate; do
        bench "choices8-$how" 90 --model /tmp/tiny16 --workload $W/long16.jsonl --temperature 0.8 --choices 8 --max-batch-size 16 \
          $([[ $how == separate ]] && echo --separate-choices)
      done ;;
    prefix-check)
      # the prefix cache (paged KV only): requests sharing a 600-token prefix, generated with --prefix-cache on and off,
      # greedy ids and logits compared (off is the reference); 64-token steps, so later requests are admitted after the
      # prefix's first blocks are computed and take them. Then bench of 16 text prompts of one long prefix, on and off:
      # its "prefix cache" line says the prompt tokens taken from cached blocks beside the prefill tokens computed.
      export_model tinyp256 tiny /tmp/tiny16p256 60 --attention paged --block-size 256 &&
        export_model tinyp16 tiny /tmp/tiny16p16 60 --attention paged --block-size 16 || continue
      "$PY" scripts/gpu/prefix-check.py $W/prefix-ids.jsonl $W/prefix-text.jsonl
      for variant in b16:/tmp/tiny16p16 b256:/tmp/tiny16p256; do
        name=${variant%%:*}; model=${variant#*:}
        for cache in on off; do
          timeout 90 "${VB[@]}" generate --device cuda --model "$model" --requests $W/prefix-ids.jsonl --json --logits \
            --max-batch-size 8 --max-scheduled-tokens 64 --prefix-cache $cache >"$OUT/prefix-$name-$cache.jsonl" 2>"$OUT/prefix-$name-$cache.err"
          rc=$?; log "generate prefix-$name-$cache rc=$rc"; (( rc == 0 )) || tail -5 "$OUT/prefix-$name-$cache.err" | tee -a "$OUT/summary.txt"
        done
        "$PY" scripts/gpu/check-prefill.py "$OUT/prefix-$name-off.jsonl" "$OUT/prefix-$name-on.jsonl" --label "prefix check $name" --tolerance 0.02 \
          | tee "$OUT/prefix-check-$name.txt" | tail -1 | tee -a "$OUT/summary.txt"
        for cache in on off; do
          bench "prefix-$name-$cache" 90 --model "$model" --workload $W/prefix-text.jsonl --max-batch-size 8 --max-scheduled-tokens 256 \
            --prefix-cache $cache
        done
      done
      rm -f "$OUT"/prefix-*.jsonl ;;
    paged-check)
      # variant B (PagedAttention) against variant A (GroupQueryAttention): same seed, same weights, same requests.
      # A on one slot is the reference; B runs: all in one step (block 256: FlashAttention at head 16 needs 256),
      # 16-token steps (chunked prompts with past context mixed with decodes), and block 16 (the fallback kernel)
      # with 8 blocks for 8 requests of up to 53 tokens, admitted on demand: preemption by recompute, and by swapping
      # to host memory (the runner's cudaMemcpy of each layer's blocks out and back).
      export_model tiny tiny /tmp/tiny16 60 &&
        export_model tinyp256 tiny /tmp/tiny16p256 60 --attention paged --block-size 256 &&
        export_model tinyp16 tiny /tmp/tiny16p16 60 --attention paged --block-size 16 || continue
      gen() { # name model args...
        local name=$1 model=$2; shift 2
        timeout 90 "${VB[@]}" generate --device cuda --model "$model" --requests scripts/gpu/prefill-check.jsonl --json --logits "$@" \
          >"$OUT/paged-$name.jsonl" 2>"$OUT/paged-$name.err"
        local rc=$?; log "generate $name rc=$rc: $*"; (( rc == 0 )) || tail -5 "$OUT/paged-$name.err" | tee -a "$OUT/summary.txt"
      }
      gen a-s1 /tmp/tiny16 --max-batch-size 1
      gen b256 /tmp/tiny16p256 --max-batch-size 8
      gen b256-t16 /tmp/tiny16p256 --max-batch-size 8 --max-scheduled-tokens 16
      gen b16-preempt /tmp/tiny16p16 --max-batch-size 8 --max-sequence-length 64 --num-kv-blocks 8 --kv-admission on-demand --kv-swap-space 0
      gen b16-swap /tmp/tiny16p16 --max-batch-size 8 --max-sequence-length 64 --num-kv-blocks 8 --kv-admission on-demand --kv-swap-space 1
      for b in b256 b256-t16 b16-preempt b16-swap; do
        "$PY" scripts/gpu/check-prefill.py "$OUT/paged-a-s1.jsonl" "$OUT/paged-$b.jsonl" --label "paged check $b" --tolerance 0.02 \
          | tee "$OUT/paged-check-$b.txt" | tail -1 | tee -a "$OUT/summary.txt"
      done
      rm -f "$OUT"/paged-*.jsonl ;;
    kv8-check)
      # int8 KV blocks (export.py --kv-cache int8) against float16 ones: tiny fp16, variant B, block 256, the same requests.
      # Scales calibrated by kv_scales.py on 8 random-id prompts (not the requests), margin 1.1.
      export_model tinyp256 tiny /tmp/tiny16p256 60 --attention paged --block-size 256 || continue
      [[ -f $W/tiny-kv-scales.json ]] || "$PY" model-export/kv_scales.py --config tiny --seed 0 --vocab-size 32000 --random-prompts 8 \
        --prompt-length 128 --margin 1.1 --out $W/tiny-kv-scales.json 2>&1 | tee -a "$OUT/summary.txt"
      export_model tinyp256i8 tiny /tmp/tiny16p256i8 60 --attention paged --block-size 256 --kv-cache int8 \
        --kv-scales $W/tiny-kv-scales.json || continue
      for m in f16:/tmp/tiny16p256 i8:/tmp/tiny16p256i8; do
        timeout 90 "${VB[@]}" generate --device cuda --model "${m#*:}" --requests scripts/gpu/prefill-check.jsonl --json --logits \
          --max-batch-size 8 >"$OUT/kv8-${m%%:*}.jsonl" 2>"$OUT/kv8-${m%%:*}.err"
        rc=$?; log "generate kv8-${m%%:*} rc=$rc"; (( rc == 0 )) || tail -5 "$OUT/kv8-${m%%:*}.err" | tee -a "$OUT/summary.txt"
      done
      "$PY" scripts/gpu/check-prefill.py "$OUT/kv8-f16.jsonl" "$OUT/kv8-i8.jsonl" --label "kv8 check (int8 KV vs float16 KV)" \
        | tee "$OUT/kv8-check.txt" | tail -1 | tee -a "$OUT/summary.txt"
      rm -f "$OUT"/kv8-*.jsonl ;;
    640paged:* | 640paged8:* | 640pagedod:* | 640pagedod0:* | w64paged:* | 640pageds-*:* | prefill:*)
      IFS=: read -r work bs <<<"$step"
      # the variant-A export's weights, hard-linked: 26 GB once on a 64 GiB disk
      export_model v13 vicuna-13b /tmp/v13 300 &&
        export_model "v13p$bs" vicuna-13b "/tmp/v13p$bs" 120 --attention paged --block-size "$bs" --link-weights /tmp/v13 || continue
      model=/tmp/v13p$bs
      case $work in
        640paged) args=(--workload $W/workload-640.jsonl) ;;
        640paged8)
          # int8 KV. Random weights: every key and value is ~N(0, 1) (unit-RMS inputs, weights of std 1/sqrt(fan in),
          # norms of ones; kv_scales.py on the tiny config saw max |x| 3.7-4.3 over 256 tokens), so one scale of
          # 5.5/127 for every layer; the speed does not depend on it
          model=/tmp/v13p${bs}i8
          export_model "v13p${bs}i8" vicuna-13b "$model" 120 --attention paged --block-size "$bs" --link-weights /tmp/v13 \
            --kv-cache int8 --kv-scales 0.0433 || continue
          args=(--workload $W/workload-640.jsonl) ;;
        640pagedod) args=(--workload $W/workload-640.jsonl --kv-admission on-demand) ;;
        640pagedod0) args=(--workload $W/workload-640.jsonl --kv-admission on-demand --kv-swap-space 0) ;;
        prefill)
          "$PY" -c 'import json,sys
p = [json.loads(l)["prompt"] for l in open(sys.argv[1]) if l.strip()]
for i in range(256): print(json.dumps({"custom_id": f"doc-{i}", "prompt": "Summarize these questions:\n" + "\n".join(p[i:i + 16]), "max_tokens": 16}))' \
            $W/workload-640.jsonl >$W/prefill-heavy.jsonl
          args=(--workload $W/prefill-heavy.jsonl) ;;
        w64paged) args=(--workload $W/workload-160.jsonl --limit 64) ;;
        640pageds-*) args=(--workload $W/workload-640.jsonl --temperature 0.8 --top-p 0.9 --sampling "${work#640pageds-}") ;;
      esac
      maxlen=1152; [[ $work == prefill ]] && maxlen=2048
      bench "$work-b$bs" 300 --model "$model" "${args[@]}" --max-batch-size 256 --max-scheduled-tokens 2048 \
        --max-sequence-length $maxlen ;;
    run640paged:*:* | run640:*:*)
      # the whole local job (vicuna-batch run: validation, SQLite queue, shard pump, checkpoints, finalizer) on workload-640,
      # against bench on the same engine settings: run640paged:BLOCKSIZE:APP (variant B, as 640paged) or
      # run640:SLOTS:APP (variant A, max length 1152); APP: new (.gpu/app) or old (.gpu/app-old, an earlier build).
      # Both processes load the model, so process time minus bench's process time is what the job's parts cost.
      IFS=: read -r work size app <<<"$step"
      dir=.gpu/app; [[ $app == old ]] && dir=.gpu/app-old
      [[ -f $dir/vicuna-batch.dll ]] || { log "skip $step: no $dir"; continue; }
      engine_640 "$work" "$size" || continue
      t=$(left); (( t > 300 )) && t=300
      if (( t < 60 )); then log "skip $step: $(left)s left"; continue; fi
      rm -rf "/tmp/run-$app"
      log "run $step (timeout ${t}s): ${eng[*]}"
      s0=$(date +%s.%N)
      # shellcheck disable=SC2086 # VB_EXTRA is a list of arguments
      timeout "$t" dotnet $dir/vicuna-batch.dll run $W/workload-640.jsonl --out "/tmp/run-$app" --device cuda "${eng[@]}" ${VB_EXTRA:-} \
        >"$OUT/run-$work-$size-$app.log" 2>&1
      rc=$?
      log "run $step rc=$rc process $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $s0}") s"
      grep -E "^completed|^failed" "$OUT/run-$work-$size-$app.log" | tee -a "$OUT/summary.txt"
      grep -c '"status_code":200' "/tmp/run-$app/output.jsonl" | sed 's/^/  output lines with status 200: /' | tee -a "$OUT/summary.txt" ;;
    bench640paged:* | bench640:*)
      # bench as a process, timed the same way as the run steps above
      IFS=: read -r work size <<<"$step"
      engine_640 "$work" "$size" || continue
      s0=$(date +%s.%N)
      bench "$step" 300 --workload $W/workload-640.jsonl --respect-eos "${eng[@]}"
      log "bench $step process $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $s0}") s" ;;
    cpu160:*:*)
      # issue 3's comparison on this machine's CPU, not its GPU: run against bench on workload-160 with the committed tiny
      # model, interleaved rounds; cpu160:CPUS:ROUNDS[:THREADS], CPUS a taskset list (0-1: two cores, as the development
      # VM has) or all, THREADS ONNX Runtime's --threads for both (default 0: one per core). Per round: bench's own
      # engine seconds, bench's process seconds, run's process seconds.
      IFS=: read -r work cpus rounds threads <<<"$step"
      pin=(); [[ $cpus != all ]] && pin=(taskset -c "$cpus")
      thr=(--threads "${threads:-0}")
      log "cpu160 on cpus $cpus, $rounds rounds, ${thr[*]}: round bench_engine_s bench_process_s run_process_s run/bench_process"
      for r in $(seq 1 "$rounds"); do
        if (( $(left) < 30 )); then log "stop $step: $(left)s left"; break; fi
        s0=$(date +%s.%N)
        timeout 60 "${pin[@]}" dotnet .gpu/app/vicuna-batch.dll bench --model models/tiny --workload $W/workload-160.jsonl \
          --respect-eos --json "${thr[@]}" >"$OUT/cpu160-bench.json" 2>/dev/null
        s1=$(date +%s.%N)
        rm -rf /tmp/cpu160-run
        timeout 60 "${pin[@]}" dotnet .gpu/app/vicuna-batch.dll run $W/workload-160.jsonl --model models/tiny --out /tmp/cpu160-run "${thr[@]}" \
          >"$OUT/cpu160-run.log" 2>&1
        rc=$?
        s2=$(date +%s.%N)
        eng=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$OUT/cpu160-bench.json" 2>/dev/null || echo nan)
        log "cpu160 $cpus${threads:+/t$threads} $r $eng $(awk "BEGIN{printf \"%.3f %.3f %.3f\", $s1 - $s0, $s2 - $s1, ($s2 - $s1) / ($s1 - $s0)}") rc=$rc"
      done
      grep "cpu160 $cpus${threads:+/t$threads} [0-9]" "$OUT/summary.txt" | awk '{print $NF=="rc=0" ? $(NF-1) : "nan"}' | sort -n |
        awk '{a[NR]=$1} END{printf "cpu160 %s: median run/bench process %.3f of %d rounds\n", "'"$cpus${threads:+/t$threads}"'", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), NR}' |
        tee -a "$OUT/summary.txt" ;;
    ab-check)
      # a refactoring that must not change results: the build before (.gpu/app-old) against this one (.gpu/app) on the
      # same requests and settings, logits compared at tolerance 0; a second run of this build first, as the control of
      # what a repeat gives. Variant A (8 slots, 16-token steps, CUDA graphs on and off) and B (block 256 in one step,
      # 16-token steps, block 16 with preemption by recompute).
      [[ -f .gpu/app-old/vicuna-batch.dll ]] || { log "skip $step: no .gpu/app-old"; continue; }
      export_model tiny tiny /tmp/tiny16 60 &&
        export_model tinyp256 tiny /tmp/tiny16p256 60 --attention paged --block-size 256 &&
        export_model tinyp16 tiny /tmp/tiny16p16 60 --attention paged --block-size 16 || continue
      for cfg in "a-graphs|/tmp/tiny16|--max-batch-size 8 --max-scheduled-tokens 16 --cuda-graphs on" \
                 "a-plain|/tmp/tiny16|--max-batch-size 8 --max-scheduled-tokens 16 --cuda-graphs off" \
                 "b256|/tmp/tiny16p256|--max-batch-size 8" \
                 "b256-t16|/tmp/tiny16p256|--max-batch-size 8 --max-scheduled-tokens 16" \
                 "b16-preempt|/tmp/tiny16p16|--max-batch-size 8 --max-sequence-length 64 --num-kv-blocks 8"; do
        IFS='|' read -r name model args <<<"$cfg"
        for run in new:.gpu/app new2:.gpu/app old:.gpu/app-old; do
          # shellcheck disable=SC2086 # args is a list of arguments
          timeout 90 dotnet "${run#*:}/vicuna-batch.dll" generate --device cuda --model "$model" --requests scripts/gpu/prefill-check.jsonl \
            --json --logits $args >"$OUT/ab-$name-${run%%:*}.jsonl" 2>"$OUT/ab-$name-${run%%:*}.err"
          rc=$?; (( rc == 0 )) || { log "generate $name ${run%%:*} rc=$rc"; tail -5 "$OUT/ab-$name-${run%%:*}.err" | tee -a "$OUT/summary.txt"; }
        done
        "$PY" scripts/gpu/check-prefill.py "$OUT/ab-$name-new.jsonl" "$OUT/ab-$name-new2.jsonl" --label "repeat $name" --tolerance 0 \
          | tail -1 | tee -a "$OUT/summary.txt"
        "$PY" scripts/gpu/check-prefill.py "$OUT/ab-$name-old.jsonl" "$OUT/ab-$name-new.jsonl" --label "before vs after $name" --tolerance 0 \
          | tee "$OUT/ab-check-$name.txt" | tail -1 | tee -a "$OUT/summary.txt"
      done
      rm -f "$OUT"/ab-*.jsonl ;;
    ab-cpu160:*:*)
      # the build before (.gpu/app-old) against this one (.gpu/app) on this machine's CPU: scripts/ab-cpu160.sh (bench and
      # run of workload-160, the committed tiny model, interleaved); ab-cpu160:CPUS:ROUNDS[:THREADS] as cpu160
      [[ -f .gpu/app-old/vicuna-batch.dll ]] || { log "skip $step: no .gpu/app-old"; continue; }
      IFS=: read -r work cpus rounds threads <<<"$step"
      t=$(left); (( t > 300 )) && t=300
      WORKLOAD=$W/workload-160.jsonl timeout "$t" scripts/ab-cpu160.sh "dotnet .gpu/app-old/vicuna-batch.dll" "dotnet .gpu/app/vicuna-batch.dll" \
        "$rounds" "$cpus" "${threads:-0}" >"$OUT/$step.txt" 2>&1
      log "$step rc=$?"; tail -6 "$OUT/$step.txt" | tee -a "$OUT/summary.txt" ;;
    bandwidth | peaks)
      # the card's copy bandwidth and matmul rate, and the weight-read floor of a decode step of the 13B package
      export_model v13 vicuna-13b /tmp/v13 300 || continue
      timeout 90 python3 scripts/gpu/device-peaks.py /tmp/v13 2>&1 | tee "$OUT/peaks.log" | tee -a "$OUT/summary.txt"
      if line=$(grep '^PEAKS ' "$OUT/peaks.log"); then
        COPY_GBPS=$(sed 's/.*copy_gbps=\([0-9.]*\).*/\1/' <<<"$line"); MATMUL_TFLOPS=$(sed 's/.*matmul_tflops=\([0-9.]*\).*/\1/' <<<"$line")
        log "peaks: copy $COPY_GBPS GB/s, matmul $MATMUL_TFLOPS TFLOP/s"
      fi ;;
    peer-cb)
      t=$(left); (( t > 400 )) && t=400
      if (( t < 60 )); then log "skip $step: $(left)s left"; continue; fi
      log "peer $step (timeout ${t}s): workload-640, each request's own max_tokens"
      timeout "$t" python3 bench/peer_transformers.py --tokenizer $W/tokenizer.model --workload $W/workload-640.jsonl --limit 0 \
        --mode manager >"$OUT/$step.log" 2>&1
      rc=$?; log "peer $step rc=$rc"; tail -3 "$OUT/$step.log" | tee -a "$OUT/summary.txt"
      if (( rc != 0 )) && (( $(left) > 240 )); then
        # the manager's API differs in this transformers: generate_batch, 281 tokens each (the workload's mean), as before
        log "peer $step: generate_batch, 281 new tokens each"
        timeout $(( $(left) - 20 )) python3 bench/peer_transformers.py --tokenizer $W/tokenizer.model --workload $W/workload-640.jsonl \
          --limit 0 --mode generate_batch --max-new-tokens 281 >"$OUT/$step-gb.log" 2>&1
        log "peer $step generate_batch rc=$?"; tail -3 "$OUT/$step-gb.log" | tee -a "$OUT/summary.txt"
      fi ;;
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
