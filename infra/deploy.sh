#!/usr/bin/env bash
# Deploys VicunaBatch into one resource group with infra/bicep/main.bicep.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: infra/deploy.sh ENV [options]
  ENV                      dev | prod (selects infra/bicep/main.ENV.bicepparam)
  -g, --resource-group RG  resource group (default: rg-vicuna-ENV); created if missing
  -l, --location REGION    Azure region with Container Apps serverless GPUs and Flex Consumption (default: swedencentral)
  --image REPO:TAG         point the workers at an image already in the deployed registry (or a full reference elsewhere)
  --build-worker DOCKERFILE  build DOCKERFILE with `az acr build` in the deployed registry, then point the workers at it
  --publish-functions PROJ dotnet publish PROJ (the Functions project) and deploy the zip to the Function App
  --no-admin               do not grant the signed-in user model upload (models container) and Key Vault secrets officer
  --preflight-only         check the region (below) and stop
  --skip-preflight         deploy without checking the region
  -h, --help               this text
Preflight: the region offers Flex Consumption with dotnet-isolated 10.0 and the serverless GPU profile of each model,
and the subscription has GPU quota there for the models' maxReplicas (az functionapp list-flexconsumption-locations,
az functionapp list-flexconsumption-runtimes, az containerapp env workload-profile list-supported, az containerapp
list-usages). A missing offer or no free GPU fails; less quota than maxReplicas, or a quota az does not list, warns.
Worker image: a deploy keeps the image the worker apps run (the public placeholder on a first deploy); the workers
move to a new image only after it is in the registry (--build-worker pushes it first, --image is looked up first).
Needs: az (logged in: az login; az account set -s SUBSCRIPTION), and dotnet for --publish-functions.
Tear down: infra/teardown.sh ENV [-g RG]
USAGE
}

die() { echo "deploy.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h | --help) usage; exit 0 ;; dev | prod) env="$1"; shift ;; *) usage >&2; exit 2 ;; esac
rg="rg-vicuna-${env}"
location="swedencentral"
image=""
dockerfile=""
functions_project=""
admin=1
preflight=1
preflight_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    -g | --resource-group) rg="$2"; shift 2 ;;
    -l | --location) location="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    --build-worker) dockerfile="$2"; shift 2 ;;
    --publish-functions) functions_project="$2"; shift 2 ;;
    --no-admin) admin=0; shift ;;
    --preflight-only) preflight_only=1; shift ;;
    --skip-preflight) preflight=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -n "$image" ] && [ -n "$dockerfile" ]; then echo "--image and --build-worker exclude each other" >&2; exit 2; fi

here="$(cd "$(dirname "$0")" && pwd)"
template="${here}/bicep/main.bicep"
params="${here}/bicep/main.${env}.bicepparam"
deployment="vicuna-${env}"

# "gpuProfileType maxReplicas" of each model in the parameter file (one entry a line, as the files keep them;
# tests/VicunaBatch.Infra.Tests checks this against bicep build-params)
model_gpus() {
  sed -n "s/.*gpuProfileType: *'\([^']*\)'.*maxReplicas: *\([0-9][0-9]*\).*/\1 \2/p" "$params"
}

# the subscription's usage that counts each serverless GPU kind (az containerapp list-usages -l REGION)
gpu_usage_name() {
  case "$1" in
    Consumption-GPU-NC24-A100) echo SubscriptionConsumptionNCA100Gpus ;;
    Consumption-GPU-NC8as-T4) echo SubscriptionConsumptionT4Gpus ;;
    *) echo "" ;;
  esac
}

preflight_region() {
  local failures=0 region flex runtimes profiles kind need usage current limit free
  region="$(echo "$location" | tr -d ' ' | tr '[:upper:]' '[:lower:]')"
  echo "preflight: ${region}"
  flex="$(az functionapp list-flexconsumption-locations --query "[].name" -o tsv | tr -d ' ' | tr '[:upper:]' '[:lower:]')"
  if grep -qx "$region" <<<"$flex"; then echo "  Flex Consumption: offered"
  else echo "  Flex Consumption: not offered in ${region} (az functionapp list-flexconsumption-locations)" >&2; failures=$((failures + 1)); fi
  runtimes="$(az functionapp list-flexconsumption-runtimes --location "$region" --runtime dotnet-isolated --query "[].version" -o tsv || true)"
  if grep -qxE '10(\.0)?' <<<"$runtimes"; then echo "  dotnet-isolated 10.0 on Flex Consumption: offered"
  else echo "  dotnet-isolated 10.0 on Flex Consumption: not offered in ${region} (az functionapp list-flexconsumption-runtimes)" >&2; failures=$((failures + 1)); fi
  profiles="$(az containerapp env workload-profile list-supported --location "$region" --query "[].name" -o tsv)"
  while read -r kind need; do
    if grep -qx "$kind" <<<"$profiles"; then echo "  ${kind}: offered"
    else echo "  ${kind}: not offered in ${region} (az containerapp env workload-profile list-supported)" >&2; failures=$((failures + 1)); continue; fi
    usage="$(gpu_usage_name "$kind")"
    read -r current limit < <(az containerapp list-usages --location "$region" \
      --query "value[?name.value=='${usage}'] | [0].[currentValue, limit]" -o tsv || true) || true
    if [ -z "${limit:-}" ]; then
      echo "  warning: GPU quota not verified: az containerapp list-usages -l ${region} lists no ${usage}" >&2
      continue
    fi
    free=$(( ${limit%.*} - ${current%.*} ))
    echo "  ${kind} quota: ${free} free of ${limit%.*} GPUs; the models' maxReplicas add up to ${need}"
    if [ "$free" -lt 1 ]; then
      echo "  ${kind}: no free GPU quota in ${region} (request it: Quotas, provider Azure Container Apps)" >&2; failures=$((failures + 1))
    elif [ "$free" -lt "$need" ]; then
      echo "  warning: ${kind}: ${free} free GPUs for up to ${need} replicas; scale-out stops at the quota" >&2
    fi
  done < <(model_gpus | awk '{ need[$1] += $2 } END { for (k in need) print k, need[k] }' | sort)
  [ "$failures" -eq 0 ] || die "preflight: ${failures} problem(s) in ${region}; pick another region (-l) or --skip-preflight"
}

if [ "$preflight" -eq 1 ]; then preflight_region; fi
if [ "$preflight_only" -eq 1 ]; then exit 0; fi

if [ "$admin" -eq 1 ]; then
  VICUNA_ADMIN_PRINCIPAL_ID="$(az ad signed-in-user show --query id -o tsv)"
  export VICUNA_ADMIN_PRINCIPAL_ID
fi

deploy() {
  # $1: the worker image (empty: the placeholder in main.bicep)
  VICUNA_WORKER_IMAGE="$1" az deployment group create --resource-group "$rg" --name "$deployment" \
    --template-file "$template" --parameters "$params" --query properties.outputs -o json >/dev/null
}
output() { az deployment group show -g "$rg" -n "$deployment" --query "properties.outputs.$1.value" -o tsv; }

echo "resource group ${rg} (${location})"
az group create --name "$rg" --location "$location" --tags app=vicuna-batch "environment=${env}" -o none

# what the worker apps run now (none on a first deploy): the first deployment keeps it, so it never points a worker
# at an image that is not in the registry yet (Container Apps would refuse the revision: MANIFEST_UNKNOWN)
current="$(az containerapp list -g "$rg" --query "[?tags.model].properties.template.containers[0].image" -o tsv | sort -u | head -n 1)"
deploy "$current"

new=""
if [ -n "$dockerfile" ]; then
  registry="$(output registryName)"
  new="vicuna-batch-worker:$(date -u +%Y%m%d%H%M%S)"
  # the build context is the repository root: the worker image builds the solution's projects (.dockerignore trims it)
  az acr build --registry "$registry" --image "$new" --file "$dockerfile" "$(cd "${here}/.." && pwd)"
elif [ -n "$image" ]; then
  new="$image"
  if [[ "$image" != */* ]]; then
    registry="$(output registryName)"
    az acr repository show --name "$registry" --image "$image" -o none ||
      die "${image} is not in registry ${registry}: push it first (--build-worker DOCKERFILE builds and pushes)"
  fi
fi
if [ -n "$new" ] && [ "$new" != "$current" ]; then
  echo "worker image ${new}"
  deploy "$new"
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
