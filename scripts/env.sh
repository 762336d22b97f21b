# Sourced by the scripts: where the build goes and where ONNX Runtime lives.
ORT_VERSION=1.31.1
SITCENTER_HOME=${SITCENTER_HOME:-$HOME/.local/share/sitcenter}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$SITCENTER_HOME/onnxruntime-$ORT_VERSION/libonnxruntime.so.$ORT_VERSION}
export PATH="$HOME/.cargo/bin:$PATH"
# Reuse a cargo target dir outside the clone when the machine has one (CI caches it).
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /var/cache/sitcenter/target ]; then
  export CARGO_TARGET_DIR=/var/cache/sitcenter/target
fi
