#!/usr/bin/env bash
# Peak RSS of `serve` taking a batch whose input has one very long line among ten normal ones (issue 22, item 1):
# uploads the file, creates the batch, waits for it to end (or for the create to be refused), prints the figures.
# usage: scripts/probes/long-line-rss.sh MB [CLI_DLL]   (MB: the long line's size; CLI_DLL: default the Release build)
#        SERVE_ARGS="--max-line-bytes 67108864" scripts/probes/long-line-rss.sh 30   (a limit that lets the line in)
# Traffic: 127.0.0.1 only. Needs curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
mb=${1:?usage: long-line-rss.sh MB [CLI_DLL]}
cli=${2:-src/VicunaBatch.Cli/bin/Release/net10.0/vicuna-batch.dll}
work=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
key=vb-probe-key-0123456789

input=$work/in.jsonl
for i in $(seq 1 5); do printf '{"custom_id":"a%d","prompt":"note %d","max_tokens":4}\n' "$i" "$i"; done > "$input"
{ printf '{"custom_id":"long","prompt":"'; head -c $((mb * 1024 * 1024)) /dev/zero | tr '\0' 'a'; printf '","max_tokens":4}\n'; } >> "$input"
for i in $(seq 6 10); do printf '{"custom_id":"a%d","prompt":"note %d","max_tokens":4}\n' "$i" "$i"; done >> "$input"

port=$(( 20000 + RANDOM % 20000 ))
# shellcheck disable=SC2086
dotnet "$cli" serve --port "$port" --data "$work/data" --api-key "$key" ${SERVE_ARGS:-} > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do grep -q "Now listening" "$work/serve.log" && break; sleep 0.1; done
base=http://127.0.0.1:$port
hwm() { awk '/VmHWM/ {print $2}' /proc/$pid/status; }
echo "file: $(stat -c %s "$input") bytes, one line of $mb MiB; serve idle peak RSS: $(hwm) KB"

start=$(date +%s.%N)
file=$(curl -sS -m 300 -H "Authorization: Bearer $key" -F purpose=batch -F "file=@$input" "$base/v1/files")
echo "upload: $(awk "BEGIN {printf \"%.2f\", $(date +%s.%N) - $start}") s; peak RSS $(hwm) KB; $(echo "$file" | head -c 200)"
file_id=$(echo "$file" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
start=$(date +%s.%N)
created=$(curl -sS -m 300 -w ' HTTP %{http_code}' -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d "{\"input_file_id\":\"$file_id\",\"endpoint\":\"/v1/completions\",\"completion_window\":\"24h\"}" "$base/v1/batches")
echo "create: $(awk "BEGIN {printf \"%.2f\", $(date +%s.%N) - $start}") s; peak RSS $(hwm) KB; $(echo "$created" | head -c 300)"
batch_id=$(echo "$created" | sed -n 's/.*"id": *"\(batch[^"]*\)".*/\1/p')
if [ -n "$batch_id" ]; then
  for _ in $(seq 1 600); do
    status=$(curl -sS -m 10 -H "Authorization: Bearer $key" "$base/v1/batches/$batch_id" | sed -n 's/.*"status": *"\([a-z_]*\)".*/\1/p')
    case "$status" in completed|failed|expired|cancelled) break ;; esac
    sleep 0.2
  done
  counts=$(curl -sS -m 10 -H "Authorization: Bearer $key" "$base/v1/batches/$batch_id" | grep -o '"request_counts":{[^}]*}')
  echo "batch: $status $counts; peak RSS $(hwm) KB"
fi
