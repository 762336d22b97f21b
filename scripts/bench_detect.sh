#!/usr/bin/env bash
# Detector throughput: criterion (Rust) and the Python onnxruntime + OpenCV loop, one run.
# Makes a virtual environment with onnxruntime==1.31.1 (the version the service loads)
# over Debian's python3-opencv and python3-numpy, then runs scripts/bench_detect.py.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if ! /usr/bin/python3 -c 'import cv2, numpy' 2>/dev/null; then
  apt-get install -y --no-install-recommends python3-opencv python3-numpy python3-venv
fi
VENV=$SITCENTER_HOME/venv-bench
if ! "$VENV/bin/python" -c 'import onnxruntime' 2>/dev/null; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install -q onnxruntime==1.31.1
fi
exec "$VENV/bin/python" scripts/bench_detect.py "$@"
