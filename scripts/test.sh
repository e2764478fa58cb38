#!/usr/bin/env bash
# The test command: set up local servers, build, and run every test against them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BTE_ROOT"
bash scripts/setup.sh
export BTE_TEST_PG_URL="postgresql://postgres@127.0.0.1:$BTE_PG_PORT"
export BTE_TEST_PG_DIR="$(cat "$BTE_DEV_DIR/pgdir")"
export BTE_TEST_BROKER_PID_FILE="$BTE_DEV_DIR/tansu.pid"
# Test tools from PyPI: schemathesis drives the HTTP API from its OpenAPI spec.
PY=python3
export PATH="$($PY -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.local/bin:$PATH"
if ! command -v schemathesis >/dev/null 2>&1; then
  $PY -m pip install -q --disable-pip-version-check schemathesis==4.32.5 2>&1 | grep -v 'Running pip as' >&2 || true
fi
# The browser tests (dashboard, in-context insights): Debian's chromium and its driver, driven by Selenium.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
# The restore drill: pgBackRest archives a scratch cluster's WAL and restores it to a time.
if ! command -v pgbackrest >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends pgbackrest >/dev/null
fi
# The tracing test's OTLP/HTTP receiver (scripts/otlp-receiver.py) decodes spans with these.
if ! $PY -c 'import opentelemetry.proto' >/dev/null 2>&1; then
  $PY -m pip install -q --disable-pip-version-check opentelemetry-proto==1.45.2 2>&1 | grep -v 'Running pip as' >&2 || true
fi
if ! $PY -c 'import selenium' >/dev/null 2>&1; then
  $PY -m pip install -q --disable-pip-version-check selenium==4.27.1 2>&1 | grep -v 'Running pip as' >&2 || true
fi
# House style: .swift-format, checked, never rewritten here (swift format -i -r Sources Tests fixes).
swift format lint --strict --recursive --parallel Sources Tests Package.swift
# Deployment files (alerts, compose, Kubernetes, Dockerfile) through their real validators.
bash scripts/validate-deploy.sh
swift build --build-tests
export BTE_BIN="$(swift build --show-bin-path)/bte"
# One test at a time: failure tests restart PostgreSQL and pause the broker.
swift test --skip-build --no-parallel "$@"
