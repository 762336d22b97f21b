#!/usr/bin/env bash
# Regenerates docs/screenshots/*.png: every UI screen in Russian and the review queue in
# Kazakh, from a real node (PostgreSQL, the street model) in headless Chromium
# (benches/ui_browser.rs --screenshots). Needs PostgreSQL running (scripts/services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# The dev profile: screenshots need no optimised build.
cargo bench --profile dev --bench ui_browser -- --screenshots docs/screenshots
