#!/usr/bin/env bash
# The engine against ONNX Runtime GenAI 0.20.0 on this machine's CPU: ../shared/bench/workload-160.jsonl with a
# package (default models/tiny), every request making exactly its max_tokens, interleaved rounds whose order rotates,
# each contender its own process. Contenders: the engine's `bench` at --max-batch-size 16 (its default) and 32; GenAI's
# native Engine (bench/GenAiPeer engine: OgaCreateEngine, static batching at max_batch_size 16, 32, 64); GenAI's batched
# generator (bench/GenAiPeer generator: static batches of 16, workload order). Both run one ONNX Runtime thread per core
# (`bench --threads 0`; the peer overlays intra_op_num_threads, GenAI's own default being one thread here).
#   scripts/genai-peer-cpu.sh ROUNDS [PACKAGE]
# CONTENDERS overrides the list (e.g. "ours-4 genai-engine-4"); MAX_LENGTH sets the KV length per request on both sides
# (bench --max-sequence-length, the peer's --max-length), for a package whose context would not fit in memory.
# Builds both programs first (Release). Prints one line per round and contender (output tok/s, seconds), then each
# contender's median tok/s and the median over rounds of the engine's best / GenAI's best in that round (the machine's
# load moves between rounds; within one round the contenders ran back to back). WORKLOAD overrides the workload file.
set -euo pipefail
rounds=$1
root=$(cd "$(dirname "$0")/.." && pwd)
model=${2:-$root/models/tiny}
workload=${WORKLOAD:-$root/../shared/bench/workload-160.jsonl}
dotnet build "$root/src/VicunaBatch.Cli" -c Release 2>&1 | tail -1
dotnet build "$root/bench/GenAiPeer" -c Release 2>&1 | tail -1
ours=$root/src/VicunaBatch.Cli/bin/Release/net10.0/vicuna-batch
peer=$root/bench/GenAiPeer/bin/Release/net10.0/GenAiPeer
read -r -a names <<<"${CONTENDERS:-ours-16 ours-32 genai-engine-16 genai-engine-32 genai-engine-64 genai-generator-16}"
max_length=${MAX_LENGTH:-0}
run() {
  case $1 in
    ours-*) "$ours" bench --model "$model" --workload "$workload" --json --max-batch-size "${1#ours-}" \
              --max-sequence-length "$max_length" 2>/dev/null ;;
    genai-engine-*) "$peer" engine "$model" "$workload" --batch-size "${1#genai-engine-}" --max-length "$max_length" 2>/dev/null ;;
    genai-generator-*) "$peer" generator "$model" "$workload" --batch-size "${1#genai-generator-}" --max-length "$max_length" 2>/dev/null ;;
  esac
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "round contender output_tok_s seconds ($(nproc) cores, $(basename "$model"), $(basename "$workload"))"
for r in $(seq 1 "$rounds"); do
  for i in "${!names[@]}"; do
    name=${names[$(( (i + r) % ${#names[@]} ))]}
    json=$(timeout 300 bash -c "$(declare -f run); ours='$ours' peer='$peer' model='$model' workload='$workload' max_length=$max_length run $name")
    tps=$(grep -o '"output_tokens_per_s": *[0-9.]*' <<<"$json" | grep -o '[0-9.]*$')
    secs=$(grep -o '"seconds": *[0-9.]*' <<<"$json" | grep -o '[0-9.]*$')
    echo "$r $name ${tps:-nan} ${secs:-nan}"
  done
done | tee "$work/rounds.txt"
uptime
for name in "${names[@]}"; do
  awk -v n="$name" '$2 == n {print $3}' "$work/rounds.txt" | sort -n |
    awk -v n="$name" '{a[NR]=$1} END{printf "%s median %.1f tok/s (%d rounds, %.1f to %.1f)\n", n, (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), NR, a[1], a[NR]}'
done
awk '{ if ($2 ~ /^ours/) { if ($3 > o[$1]) o[$1] = $3 } else if ($3 > g[$1]) g[$1] = $3 }
     END { for (r in o) print o[r] / g[r] }' "$work/rounds.txt" | sort -n |
  awk '{a[NR]=$1} END{printf "engine best / GenAI best, per round: median %.2f (%d rounds, %.2f to %.2f)\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), NR, a[1], a[NR]}'
