#!/usr/bin/env bash
# Issue 3's comparison on a lent machine's CPU (its GPU unused), for a program that needs no .NET there: the native
# build (scripts/publish-native.sh), packed as a .tar.xz of its folder. Interleaved rounds of `bench --respect-eos
# --json` then `run` into a fresh folder, workload-160, the committed tiny model (inside the package), under taskset.
# usage: BUDGET_S=… OUT=… scripts/gpu/cpu-run-vs-bench.sh PACKAGE.tar.xz WORKLOAD.jsonl CPUS:ROUNDS…
#   CPUS: a taskset list (0-1: two cores, as the development VM has) or all. Writes $OUT/summary.txt.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
BUDGET_S=${BUDGET_S:-570}; START=$(date +%s)
left() { echo $((BUDGET_S - ($(date +%s) - START))); }
log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/summary.txt"; }
package=$1 workload=$2; shift 2
rm -rf /tmp/native && mkdir -p /tmp/native && tar -xJf "$package" -C /tmp/native
B=$(ls -d /tmp/native/*/)vicuna-batch
log "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
for spec in "$@"; do
  IFS=: read -r cpus rounds <<<"$spec"
  pin=(); [[ $cpus != all ]] && pin=(taskset -c "$cpus")
  log "cpus $cpus, $rounds rounds: round bench_engine_s bench_process_s run_process_s run/bench_process"
  for r in $(seq 1 "$rounds"); do
    if (( $(left) < 20 )); then log "stop: $(left)s left"; break; fi
    s0=$(date +%s.%N)
    timeout 60 "${pin[@]}" "$B" bench --workload "$workload" --respect-eos --json >"$OUT/bench.json" 2>/dev/null
    s1=$(date +%s.%N)
    rm -rf /tmp/native-run
    timeout 60 "${pin[@]}" "$B" run "$workload" --out /tmp/native-run >"$OUT/run.log" 2>&1
    rc=$?
    s2=$(date +%s.%N)
    eng=$(grep -o '"seconds":[0-9.]*' "$OUT/bench.json" | cut -d: -f2)
    log "native $cpus $r ${eng:-nan} $(awk "BEGIN{printf \"%.3f %.3f %.3f\", $s1 - $s0, $s2 - $s1, ($s2 - $s1) / ($s1 - $s0)}") rc=$rc"
  done
  grep "native $cpus [0-9]" "$OUT/summary.txt" | awk '$NF=="rc=0" {print $(NF-1)}' | sort -n |
    awk '{a[NR]=$1; if ($1 <= 1.10) w++} END{printf "native %s: median run/bench process %.3f of %d rounds, %d within 10 %%\n", "'"$cpus"'", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), NR, w}' |
    tee -a "$OUT/summary.txt"
done
