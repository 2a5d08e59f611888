#!/usr/bin/env bash
# Restores the Bicep CLI from NuGet (package Azure.Bicep.CommandLine.linux-x64, the only registry this project
# reaches) into infra/tools/.packages and prints the path of the binary. With arguments, runs it instead:
#   infra/bicep-tool.sh                 -> prints /…/infra/tools/.packages/…/tools/bicep
#   infra/bicep-tool.sh lint main.bicep -> runs bicep lint main.bicep
# BICEP_VERSION overrides the pinned version (0.49.2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${BICEP_VERSION:-0.49.2}"
case "$(uname -m)" in
  x86_64) rid=linux-x64 ;;
  aarch64 | arm64) rid=linux-arm64 ;;
  *) echo "bicep-tool.sh: unsupported machine $(uname -m)" >&2; exit 2 ;;
esac
package="azure.bicep.commandline.${rid}"
bin="${here}/tools/.packages/${package}/${version}/tools/bicep"
if [ ! -x "$bin" ]; then
  dotnet restore "${here}/tools/bicep.csproj" -p:BicepVersion="${version}" -p:BicepRid="${rid}" \
    --verbosity quiet -nologo >&2
  # NuGet does not keep the execute bit of files inside a package
  chmod +x "$bin"
fi
if [ $# -eq 0 ]; then
  echo "$bin"
else
  exec "$bin" "$@"
fi
