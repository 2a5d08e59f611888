#!/usr/bin/env bash
# The native build of the CLI: `vicuna-batch` compiled ahead of time (NativeAOT), no .NET runtime needed to run it and no
# JIT while it runs. Usage: scripts/publish-native.sh [OUT_DIR]   (default: dist/vicuna-batch; the program is OUT_DIR/vicuna-batch)
# Needs a C toolchain for the final link (clang, zlib): installed with apt when missing. Takes minutes (docs/performance.md,
# "the native build brings `run` within 10 % of `bench`", says how long).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist/vicuna-batch}

# the ILCompiler links with clang; Debian's clang package may be only a versioned clang-N
cc=$(command -v clang || true)
[ -n "$cc" ] || cc=$(ls /usr/bin/clang-[0-9]* 2>/dev/null | grep -E 'clang-[0-9]+$' | sort -V | tail -1 || true)
if [ -z "$cc" ] || [ ! -f /usr/include/zlib.h ]; then
  echo "installing clang zlib1g-dev (apt), the native build's linker"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang zlib1g-dev >/dev/null
  cc=$(command -v clang)
fi

rid=$(dotnet --info | awk '/^ *RID:/ { print $2; exit }')
echo "publishing the native vicuna-batch for $rid into $out (linker: $cc)"
# its own intermediate folders (--artifacts-path), so the JIT build's bin/ and obj/ stay as they are
dotnet publish src/VicunaBatch.Cli -c Release -r "$rid" -p:PublishAot=true -p:CppCompilerAndLinker="$cc" \
  --artifacts-path .native-build -o "$out" -nologo -v q
# the managed symbol files are not part of it, nor are the vicuna-worker.* files an earlier publish into OUT_DIR left (the
# CLI no longer references the worker project); vicuna-batch.dbg, the native program's symbols, stays for a debugger
rm -f "$out"/*.pdb "$out"/vicuna-worker.*
echo "$out/vicuna-batch"
