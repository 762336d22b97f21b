#!/usr/bin/env bash
# The demo city: bootstrap, build, start what it needs, and run simulated Astana
# cameras through the real pipeline; prints the web UI address. Ctrl-C stops it.
# Extra arguments go to `sitcenter demo` (e.g. --cameras 200).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh
cargo build --release --bin sitcenter
exec "${CARGO_TARGET_DIR:-target}/release/sitcenter" demo "$@"
