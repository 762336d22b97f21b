#!/usr/bin/env bash
# Makes a Debian 12 machine ready to build, run and test sitcenter. Idempotent and
# fast when everything is already there: it checks before it installs.
#
#   - GStreamer 1.22 (core, base, good, bad, ugly, libav, RTSP server, dev headers)
#   - PostgreSQL 15 and Mosquitto (installed here; scripts/services.sh starts them)
#   - Chromium + chromedriver (the web UI tests drive a real browser)
#   - ONNX Runtime's shared library, taken from the PyPI `onnxruntime` wheel
#     (ort is built with `load-dynamic`; nothing is downloaded at build time)
#   - Rust (rustup) and cargo-nextest when missing
set -euo pipefail

ORT_VERSION=1.31.1
SITCENTER_HOME=${SITCENTER_HOME:-$HOME/.local/share/sitcenter}
ORT_DIR="$SITCENTER_HOME/onnxruntime-$ORT_VERSION"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { printf '[bootstrap] %s\n' "$*" >&2; }

APT_PACKAGES=(
  pkg-config build-essential ca-certificates curl unzip python3 python3-pip python3-venv
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  libgstrtspserver-1.0-dev gstreamer1.0-tools gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav gstreamer1.0-rtsp gstreamer1.0-x
  postgresql postgresql-contrib mosquitto mosquitto-clients
  chromium chromium-driver
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  # python3/pip may come from elsewhere (pyenv): accept a working command too.
  case "$p" in
    python3) command -v python3 >/dev/null && continue ;;
    python3-pip) python3 -m pip --version >/dev/null 2>&1 && continue ;;
    python3-venv) python3 -c 'import ensurepip, venv' >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "Debian packages: all present"
fi

# ONNX Runtime shared library from the PyPI wheel (no libpython needed at run time).
if [ ! -f "$ORT_DIR/libonnxruntime.so.$ORT_VERSION" ]; then
  log "fetching ONNX Runtime $ORT_VERSION from PyPI into $ORT_DIR"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: "onnxruntime==$ORT_VERSION" -d "$tmp"
  mkdir -p "$ORT_DIR"
  unzip -q -o -j "$tmp"/onnxruntime-"$ORT_VERSION"-*.whl 'onnxruntime/capi/libonnxruntime.so*' -d "$ORT_DIR"
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"
else
  log "ONNX Runtime $ORT_VERSION: present in $ORT_DIR"
fi

# schemathesis (the schema-driven run over src/api/openapi.json in api::hostile_tests), in a
# venv of its own, pinned.
SCHEMATHESIS_VERSION=4.32.5
ST_VENV="$SITCENTER_HOME/schemathesis-venv"
if ! "$ST_VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $ST_VENV"
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
else
  log "schemathesis $SCHEMATHESIS_VERSION: present in $ST_VENV"
fi

# Rust: the toolchain pinned by Cargo.toml's rust-version, through rustup.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    log "installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest from crates.io"
  cargo install --locked cargo-nextest
fi
log "ready"
