#!/usr/bin/env bash
# Rebuilds everything models/synth makes, from nothing, in one command (about 1 hour on 2 cores):
#   models/street/setup.sh   (packages, venv)           then
#   models/street/build.sh   (dataset, training, export, fixtures, test clips)
# Steps can be skipped with SKIP_DATA=1 / SKIP_TRAIN=1 (reuse models/.cache) or SKIP_CLIPS=1.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
models="$(cd "$here/.." && pwd)"
py="$models/.venv/bin/python"
[[ -x "$py" ]] || "$here/setup.sh"
cd "$models"
if [[ -z "${SKIP_DATA:-}" ]]; then
  "$py" synth/dataset.py val 300 2      # seeds 2000000..2000299: threshold choice
  "$py" synth/dataset.py train 3000 2   # seeds 1000000..1002999
  "$py" synth/dataset.py test 400 2     # seeds 3000000..3000399: held-out figures only
fi
if [[ -z "${SKIP_TRAIN:-}" ]]; then
  "$py" synth/train.py --steps 1000 --batch 16 --threads 2 --seed 0 | tee .cache/train.log
fi
"$py" synth/export.py .cache/ckpt_1000.pt street --name street --version 2026.11.23-1 \
  --note "Street detector trained on synthetic scenes only (1000 steps)."
"$py" synth/export.py .cache/ckpt_250.pt street-v0 --name street-v0 --version 2026.11.23-0 \
  --note "Early checkpoint (step 250 of 1000) of the street detector: a deliberately weaker baseline."
"$py" synth/make_fixtures.py
if [[ -z "${SKIP_CLIPS:-}" ]]; then
  "$py" synth/make_clips.py
fi
