#!/usr/bin/env bash
# The build before against this one on the CPU: bench and run of ../shared/bench/workload-160.jsonl with the committed
# tiny model, interleaved rounds whose order alternates (old first in odd rounds), each build as its own process.
#   scripts/ab-cpu160.sh OLD NEW ROUNDS [CPUS [THREADS]]
# OLD, NEW: a vicuna-batch program each (a native build, or `dotnet path/vicuna-batch.dll` quoted as one argument);
# CPUS: a taskset list, or all (default); THREADS: --threads for both (default 0: one per core). WORKLOAD overrides the
# workload file. Prints one line per round and build (bench's engine seconds, bench's process seconds, run's process
# seconds), then each build's medians. Every number comes from the machine it runs on.
set -uo pipefail
old=$1 new=$2 rounds=$3 cpus=${4:-all} threads=${5:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
workload=${WORKLOAD:-$root/../shared/bench/workload-160.jsonl}
model=$root/models/tiny
pin=(); [[ $cpus != all ]] && pin=(taskset -c "$cpus")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "round build bench_engine_s bench_process_s run_process_s (cpus $cpus, threads $threads, $(nproc) cores)"
for r in $(seq 1 "$rounds"); do
  order="old new"; (( r % 2 == 0 )) && order="new old"
  for build in $order; do
    program=$old; [[ $build == new ]] && program=$new
    s0=$(date +%s.%N)
    # shellcheck disable=SC2086 # a program may be "dotnet x.dll"
    timeout 120 "${pin[@]}" $program bench --model "$model" --workload "$workload" --respect-eos --json --threads "$threads" >"$work/bench.json" 2>/dev/null
    s1=$(date +%s.%N)
    rm -rf "$work/run"
    # shellcheck disable=SC2086
    timeout 120 "${pin[@]}" $program run "$workload" --model "$model" --out "$work/run" --threads "$threads" >"$work/run.log" 2>&1 || echo "run failed: $(tail -2 "$work/run.log")" >&2
    s2=$(date +%s.%N)
    engine=$(grep -o '"seconds": *[0-9.]*' "$work/bench.json" | grep -o '[0-9.]*$')
    awk -v r="$r" -v b="$build" -v e="${engine:-nan}" -v s0="$s0" -v s1="$s1" -v s2="$s2" 'BEGIN{printf "%s %s %s %.3f %.3f\n", r, b, e, s1 - s0, s2 - s1}'
  done
done | tee "$work/rounds.txt"
for build in old new; do
  for col in 3 4 5; do
    awk -v b="$build" -v c="$col" '$2 == b {print $c}' "$work/rounds.txt" | sort -n |
      awk -v b="$build" -v c="$col" '{a[NR]=$1} END{n=split("bench_engine_s bench_process_s run_process_s", h, " ");
        printf "%s median %s %.3f (%d rounds, %.3f to %.3f)\n", b, h[c-2], (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), NR, a[1], a[NR]}'
  done
done
