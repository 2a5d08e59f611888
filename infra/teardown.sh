#!/usr/bin/env bash
# Deletes everything infra/deploy.sh created: the whole resource group.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: infra/teardown.sh ENV [-g RG] [--yes]
  ENV                      dev | prod
  -g, --resource-group RG  resource group (default: rg-vicuna-ENV)
  --yes                    do not ask
Key Vault stays soft-deleted for 90 days (purge-protected in prod); its name is taken until purged:
  az keyvault purge --name NAME   (dev only)
USAGE
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h | --help) usage; exit 0 ;; dev | prod) env="$1"; shift ;; *) usage >&2; exit 2 ;; esac
rg="rg-vicuna-${env}"
yes=()
while [ $# -gt 0 ]; do
  case "$1" in
    -g | --resource-group) rg="$2"; shift 2 ;;
    --yes) yes=(--yes); shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

az group delete --name "$rg" "${yes[@]}"
