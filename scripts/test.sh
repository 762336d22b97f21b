#!/usr/bin/env bash
# The whole test suite, from a fresh clone: bootstrap, start PostgreSQL and
# Mosquitto when they are not running, then every test (real RTSP, GStreamer,
# PostgreSQL, MQTT, browser). Extra arguments go to cargo nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
cargo nextest run --profile ci --all-targets "$@"
