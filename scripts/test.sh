#!/usr/bin/env bash
# The test command: set up local servers, build, and run every test against them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BTE_ROOT"
bash scripts/setup.sh
export BTE_TEST_PG_URL="postgresql://postgres@127.0.0.1:$BTE_PG_PORT"
export BTE_TEST_PG_DIR="$(cat "$BTE_DEV_DIR/pgdir")"
export BTE_TEST_BROKER_PID_FILE="$BTE_DEV_DIR/tansu.pid"
# House style: .swift-format, checked, never rewritten here (swift format -i -r Sources Tests fixes).
swift format lint --strict --recursive --parallel Sources Tests Package.swift
# Deployment files (alerts, compose, Kubernetes, Dockerfile) through their real validators.
bash scripts/validate-deploy.sh
swift build --build-tests
export BTE_BIN="$(swift build --show-bin-path)/bte"
# One test at a time: failure tests restart PostgreSQL and pause the broker.
swift test --skip-build --no-parallel "$@"
