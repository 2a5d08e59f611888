#!/usr/bin/env bash
# Issue 26 on the GPU machine: cold start (process start to first token) of the Vicuna-13B fp16 package (random
# weights, real shapes) on the CUDA provider, from a local folder and read into host memory first (the worker's path
# from Blob Storage, without the network), with each stage's bytes/s and the peak resident host memory.
#   here:  ../shared/gpu/pack.sh bench/ColdStartBench/ColdStartBench.csproj; mkdir -p .gpuwork;
#          cp ../shared/models/llama-tokenizer.model .gpuwork/tokenizer.model
#   there: carry .gpu/app .gpu/setup.sh .gpuwork (runtime parts first, as pack.sh prints), then
#          bash scripts/gpu/coldstart-13b.sh        (MODES="dir memory dir" to repeat; default "dir memory")
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
bash .gpu/setup.sh >"$OUT/setup.log" 2>&1 || { cat "$OUT/setup.log"; exit 1; }
source /tmp/rt/env.sh
export DOTNET_gcServer=0 COLDSTART_DEVICE=cuda
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/summary.txt"
PY=/usr/bin/python3
"$PY" -c 'import numpy, onnx' 2>/dev/null || PY=$(command -v python3)
if [[ ! -f /tmp/v13/genai_config.json ]]; then
  s0=$(date +%s)
  timeout 330 "$PY" model-export/export.py --config vicuna-13b --seed 0 --dtype float16 --tokenizer .gpuwork/tokenizer.model \
    --out /tmp/v13 >"$OUT/export.log" 2>&1 || { echo "export failed"; tail -5 "$OUT/export.log"; exit 1; }
  echo "export: $(( $(date +%s) - s0 )) s, $(du -sh /tmp/v13 | cut -f1)" | tee -a "$OUT/summary.txt"
fi
for mode in ${MODES:-dir memory}; do
  sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null && cache=cold || cache=warm
  echo "== $mode (page cache $cache)" | tee -a "$OUT/summary.txt"
  timeout 150 dotnet .gpu/app/ColdStartBench.dll $mode /tmp/v13 2>"$OUT/coldstart-$mode.err" | tee -a "$OUT/summary.txt"
  (( ${PIPESTATUS[0]} == 0 )) || tail -5 "$OUT/coldstart-$mode.err" | tee -a "$OUT/summary.txt"
done
