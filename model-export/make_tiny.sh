#!/usr/bin/env bash
# Builds models/tiny: a SentencePiece BPE tokenizer (1024 pieces) trained on model-export/tiny-corpus.txt
# and a random-weight "tiny" package (float32, seed 20261128). Run from the repository root.
# The weights are random: the model's text is noise. It exists for tests, demos and CI.
set -euo pipefail

PY=/usr/bin/python3
CORPUS=model-export/tiny-corpus.txt
OUT=${1:-models/tiny}

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

"$PY" model-export/export.py --config tiny --seed 20261128 --dtype float32 \
    --tokenizer "$work/tokenizer.model" --out "$OUT"

ls -l "$OUT"
