#!/usr/bin/env bash
# Trains models/tiny's weights on the GPU machine (model-export/train_tiny.py, CUDA), one run per shape, and leaves each
# Hugging Face folder (config.json, model.safetensors, loss.tsv) and its log under $OUT/<name>. The dataset is built here
# first (sentencepiece is not on the GPU machine):
#   /usr/bin/python3 model-export/train_tiny.py --tokenizer models/tiny/tokenizer.model --write-dataset .gpuwork/tiny-dataset.json
# then, on the device (carry .gpuwork):
#   SHAPES="A:128:2:384:8000" TRAIN_ARGS="--json-share 0" bash scripts/gpu/train-tiny.sh   # models/tiny's stage 1
# SHAPES: name:hidden:layers:ffn:steps, space-separated (4 heads, 2 KV heads each); TRAIN_ARGS: more train_tiny.py
# options for every run. Export a folder with export.py --from-hf, or TRAINED=DIR model-export/make_tiny.sh.
set -uo pipefail
OUT=${OUT:-/tmp/out}
DATASET=${DATASET:-.gpuwork/tiny-dataset.json}
SHAPES=${SHAPES:-A:128:2:384:8000}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$OUT/card.txt"
python3 -c 'import torch; print("torch", torch.__version__)'
for shape in $SHAPES; do
    IFS=: read -r name hidden layers ffn steps <<<"$shape"
    mkdir -p "$OUT/$name"
    echo "== $name: hidden $hidden, $layers layers, ffn $ffn, $steps steps"
    timeout 240 python3 model-export/train_tiny.py --dataset "$DATASET" --device cuda --out "$OUT/$name" \
        --hidden "$hidden" --layers "$layers" --ffn "$ffn" --steps "$steps" ${TRAIN_ARGS:-} 2>&1 | tee "$OUT/$name/train.log" | grep -E "^(step [0-9]*000/|trained|[0-9]+ completion)|Error|error"
done
