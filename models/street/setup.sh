#!/usr/bin/env bash
# Idempotent setup for the street detector pipeline: Debian packages (torch, OpenCV, NumPy,
# GStreamer x264 for the test clips) and a venv at models/.venv with onnx + onnxruntime pinned.
# Usage: models/street/setup.sh        (needs root for apt-get when something is missing)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
models="$(cd "$here/.." && pwd)"
venv="$models/.venv"

apt_pkgs=(python3-torch=1.13.1+dfsg-4 python3-opencv=4.6.0+dfsg-12 python3-numpy python3-venv
          gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)
missing=()
for p in "${apt_pkgs[@]}"; do
  name="${p%%=*}"; want="${p#*=}"
  have="$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)"
  if [[ "$have" != "install ok installed"* ]] || { [[ "$p" == *=* ]] && [[ "$have" != *" $want" ]]; }; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [[ ! -x "$venv/bin/python" ]]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
if ! "$venv/bin/python" - "$here/requirements.txt" <<'PY'
import sys, importlib.metadata as md
for line in open(sys.argv[1]):
    line = line.split('#')[0].strip()
    if not line: continue
    name, ver = line.split('==')
    if md.version(name) != ver: sys.exit(1)
PY
then
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi
"$venv/bin/python" -c "import torch, cv2, numpy, onnx, onnxruntime; print('setup ok: torch', torch.__version__, 'opencv', cv2.__version__, 'numpy', numpy.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)"
