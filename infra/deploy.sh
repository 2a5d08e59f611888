#!/usr/bin/env bash
# Deploys VicunaBatch into one resource group with infra/bicep/main.bicep.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: infra/deploy.sh ENV [options]
  ENV                      dev | prod (selects infra/bicep/main.ENV.bicepparam)
  -g, --resource-group RG  resource group (default: rg-vicuna-ENV); created if missing
  -l, --location REGION    Azure region with Container Apps serverless GPUs (default: swedencentral)
  --image REPO:TAG         worker image in the deployed registry (default: the param file's; a placeholder in dev)
  --build-worker DOCKERFILE  build DOCKERFILE with `az acr build` in the deployed registry, then redeploy with it
  --publish-functions PROJ dotnet publish PROJ (the Functions project) and deploy the zip to the Function App
  --no-admin               do not grant the signed-in user model upload (models container) and Key Vault secrets officer
  -h, --help               this text
Needs: az (logged in: az login; az account set -s SUBSCRIPTION), and dotnet for --publish-functions.
Tear down: infra/teardown.sh ENV [-g RG]
USAGE
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h | --help) usage; exit 0 ;; dev | prod) env="$1"; shift ;; *) usage >&2; exit 2 ;; esac
rg="rg-vicuna-${env}"
location="swedencentral"
image=""
dockerfile=""
functions_project=""
admin=1
while [ $# -gt 0 ]; do
  case "$1" in
    -g | --resource-group) rg="$2"; shift 2 ;;
    -l | --location) location="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    --build-worker) dockerfile="$2"; shift 2 ;;
    --publish-functions) functions_project="$2"; shift 2 ;;
    --no-admin) admin=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

here="$(cd "$(dirname "$0")" && pwd)"
template="${here}/bicep/main.bicep"
params="${here}/bicep/main.${env}.bicepparam"
deployment="vicuna-${env}"

if [ "$admin" -eq 1 ]; then
  VICUNA_ADMIN_PRINCIPAL_ID="$(az ad signed-in-user show --query id -o tsv)"
  export VICUNA_ADMIN_PRINCIPAL_ID
fi
if [ -n "$image" ]; then export VICUNA_WORKER_IMAGE="$image"; fi

deploy() {
  az deployment group create --resource-group "$rg" --name "$deployment" \
    --template-file "$template" --parameters "$params" --query properties.outputs -o json
}
output() { az deployment group show -g "$rg" -n "$deployment" --query "properties.outputs.$1.value" -o tsv; }

echo "resource group ${rg} (${location})"
az group create --name "$rg" --location "$location" --tags app=vicuna-batch "environment=${env}" -o none
deploy >/dev/null

if [ -n "$dockerfile" ]; then
  registry="$(output registryName)"
  tag="vicuna-batch-worker:$(date -u +%Y%m%d%H%M%S)"
  # the build context is the repository root: the worker image builds the solution's projects (.dockerignore trims it)
  az acr build --registry "$registry" --image "$tag" --file "$dockerfile" "$(cd "$(dirname "$0")/.." && pwd)"
  export VICUNA_WORKER_IMAGE="$tag"
  deploy >/dev/null
fi

if [ -n "$functions_project" ]; then
  out="$(mktemp -d)"
  dotnet publish "$functions_project" -c Release -o "${out}/app"
  (cd "${out}/app" && zip -qr "${out}/functions.zip" .)
  az functionapp deployment source config-zip -g "$rg" -n "$(output functionAppName)" --src "${out}/functions.zip"
  rm -rf "$out"
fi

echo "API base URL:     $(output apiBaseUrl)"
echo "models container: $(output modelsContainerUrl)"
echo "key vault:        $(output keyVaultName)"
echo "worker apps (model: app):"
az deployment group show -g "$rg" -n "$deployment" --query "properties.outputs.workerAppNames.value" -o json
