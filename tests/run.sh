#!/usr/bin/env bash
# The test command: every project of VicunaBatch.sln (ONNX Runtime GenAI's reference tests too, its package from NuGet).
# Installs what the tests need (Debian's python3-onnx, python3-numpy, python3-sentencepiece
# for model-export and the tokenizer oracle), the OpenAI Node SDK for the API test and Azurite for the Azure tests, builds everything,
# runs every test project, then publishes the native build (scripts/publish-native.sh) and runs the CLI's tests again
# with their processes running it. --long: the bigger sizes (a 1,000,000-line job instead of 100,000; minutes).
# --no-native: skip the native build and its pass (about 4 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
native=1
for arg in "$@"; do
  case "$arg" in
    --long) export VICUNABATCH_LONG_TESTS=1 ;;
    --no-native) native=0 ;;
    *) echo "usage: tests/run.sh [--long] [--no-native]" >&2; exit 2 ;;
  esac
done

need=()
/usr/bin/python3 -c "import onnx, numpy" 2>/dev/null || need+=(python3-onnx python3-numpy)
/usr/bin/python3 -c "import sentencepiece" 2>/dev/null || need+=(python3-sentencepiece)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (apt)"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# the OpenAI Node SDK that the API acceptance test drives, and Azurite for the Azure tests (npm registry)
(cd tests/VicunaBatch.Api.Tests/sdk && npm ci --no-audit --no-fund --loglevel=error)
[ -f tests/VicunaBatch.Azure.Tests/azurite/node_modules/azurite/package.json ] \
  || (cd tests/VicunaBatch.Azure.Tests/azurite && npm ci --no-audit --no-fund --loglevel=error)

if [ ! -d ../shared ] && [ -z "${VICUNA_SHARED:-}" ]; then
  echo "note: ../shared (questions, stories260K, LLaMA tokenizer) not found; tests that need it fail and say so" >&2
fi

dotnet build VicunaBatch.sln -c Release -warnaserror 2>&1 | tail -3
log=$(mktemp)
status=0
dotnet test VicunaBatch.sln -c Release --no-build --logger "console;verbosity=minimal" 2>&1 | tee "$log" || status=$?
# one closing line over the test projects of a pass
count() {
  awk -v what="$2" '/(Passed|Failed)! +- Failed: / { gsub(",", ""); for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
       END { printf "%s%d passed, %d failed, %d skipped\n", what, p, f, s }' "$1"
}
count "$log" ""

if [ "$native" -eq 1 ]; then
  # the native program: the CLI's tests again, every command they start as a process running it instead of the .dll
  scripts/publish-native.sh .native-build/dist
  native_log=$(mktemp)
  VICUNABATCH_CLI="$PWD/.native-build/dist/vicuna-batch" dotnet test tests/VicunaBatch.Cli.Tests -c Release --no-build \
    --logger "console;verbosity=minimal" 2>&1 | tee "$native_log" || status=$?
  count "$native_log" "the CLI's tests on the native build: "
  rm -f "$native_log"
fi
rm -f "$log"
exit $status
