#!/usr/bin/env bash
# Builds models/tiny: a SentencePiece BPE tokenizer (1024 pieces) trained on model-export/tiny-corpus.txt, then a
# small LLaMA (hidden 128, 2 layers, 4 heads, 2 KV heads) trained on the same corpus by model-export/train_tiny.py in
# the committed weights' two stages (8,000 steps without the JSON questions, then 300 with them from those weights),
# exported as an ordinary float32 package. Run from the repository root.
#
#   DEVICE=cuda model-export/make_tiny.sh [OUT]           # stage 1 on this machine's GPU (3 minutes on an H100)
#   model-export/make_tiny.sh [OUT]                       # stage 1 on the CPU (about a day on 2 cores)
#   TRAINED=DIR model-export/make_tiny.sh [OUT]           # exports weights trained elsewhere (a Hugging Face folder
#                                                         # from train_tiny.py)
# Stage 2 runs on the CPU (15 minutes on 2 busy cores). The tokenizer is byte-identical on every run; the weights are
# seeded (models/tiny/README.md says where they were trained and how the loss went).
set -euo pipefail

PY=/usr/bin/python3
CORPUS=model-export/tiny-corpus.txt
OUT=${1:-models/tiny}
# the committed weights: shape A of models/tiny/README.md
SHAPE=(--hidden 128 --layers 2 --heads 4 --kv-heads 2 --ffn 384 --seed 20261207)

if [[ ! -f "$CORPUS" || ! -f model-export/export.py ]]; then
    echo "run from the repository root ($CORPUS not found)" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The trainer records input and model_prefix in the model file: train inside the temp folder with
# fixed relative names so tokenizer.model does not carry the random temp path.
cp "$CORPUS" "$work/tiny-corpus.txt"

(cd "$work" && "$PY" - tiny-corpus.txt tokenizer) <<'PY'
import sys
import sentencepiece as spm

corpus, prefix = sys.argv[1], sys.argv[2]
spm.SentencePieceTrainer.train(
    input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=1024,
    byte_fallback=True, character_coverage=1.0, bos_id=1, eos_id=2, unk_id=0, pad_id=-1,
    num_threads=1, split_digits=True, normalization_rule_name="identity",
    add_dummy_prefix=True, remove_extra_whitespaces=False,
    minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
sample = "Batch 42: tokenize  café, 3.14 and {\"max_tokens\": 64}."
assert sp.decode(sp.encode(sample)) == sample, "tokenizer does not round-trip"
print(f"tokenizer: {sp.get_piece_size()} pieces", file=sys.stderr)
PY

weights=${TRAINED:-}
if [[ -z "$weights" ]]; then
    if ! "$PY" -c 'import torch' 2>/dev/null; then
        echo "training needs PyTorch for $PY: apt-get install python3-torch (or TRAINED=DIR to export trained weights)" >&2
        exit 1
    fi
    "$PY" model-export/train_tiny.py --tokenizer "$work/tokenizer.model" --corpus "$CORPUS" --write-dataset "$work/dataset.json"
    "$PY" model-export/train_tiny.py --dataset "$work/dataset.json" --device "${DEVICE:-cpu}" --out "$work/stage1" \
        "${SHAPE[@]}" --steps 8000 --batch 64 --seq 192 --lr 3e-3 --json-share 0
    "$PY" model-export/train_tiny.py --dataset "$work/dataset.json" --device cpu --threads 2 --init "$work/stage1" \
        --out "$work/stage2" "${SHAPE[@]}" --steps 300 --batch 16 --seq 160 --lr 1e-3 --json-share 0.15
    weights="$work/stage2"
fi

"$PY" model-export/export.py --from-hf "$weights" --dtype float32 --tokenizer "$work/tokenizer.model" --out "$OUT"

ls -l "$OUT"
