#!/usr/bin/env bash
# User-space instructions of the ingest against the decode floor, counted by valgrind's
# callgrind: a figure that does not move with the machine's load, clock or caches (the
# CPU-time ratios in docs/performance.md do, by up to 2× on the 2-core VM). Kernel work
# (TCP receive, syscalls, wake-ups) is not counted: callgrind sees user space only.
#
#   bash scripts/ingest_instructions.sh [BIN] [CAMERAS] [WINDOW_S]
#
# 1. floor: `sitcenter decode-floor` under callgrind with 10 and 60 keyframes; the
#    difference ÷ 50 is the instructions of one keyframe decoded and letterboxed.
# 2. live: `sitcenter rtsp-sim` (native) serving CAMERAS (default 10) cameras and
#    `sitcenter run` under callgrind; once every camera streams, the counters are zeroed,
#    WINDOW_S (default 30) seconds later dumped, and each camera's frames and access units
#    read from /api/cameras to check that the slowed process still kept up.
# 3. the same run with no camera: the process's fixed instructions per second.
# Prints instructions per camera-second for both and their ratio. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/sitcenter}")
N=${2:-10}
WINDOW=${3:-30}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
WORK=$(mktemp -d)
SIM_PORT=18554
HTTP_PORT=18089
cleanup() { kill "${SIM:-}" "${RUN:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

ir() { grep -h '^summary:' "$1" | awk '{print $2}'; }

echo "floor: decode-floor under callgrind (10 and 60 keyframes)" >&2
for k in 10 60; do
  valgrind --tool=callgrind --callgrind-out-file="$WORK/floor$k" "$BIN" decode-floor --keyframes $k \
    >/dev/null 2>"$WORK/floor$k.log"
done
FLOOR_KF=$(( ($(ir "$WORK/floor60") - $(ir "$WORK/floor10")) / 50 ))

"$BIN" rtsp-sim --port $SIM_PORT --cameras "$N" --media test-media/synthetic-360p.mp4 \
  --flaky 0 --stalling 0 --corrupt 0 --refusing 0 --secure 0 >"$WORK/sim.log" 2>&1 &
SIM=$!

live() { # $1 = cameras; prints "instructions window_s frames units dropped"
  local n=$1 site="$WORK/site$1"
  mkdir -p "$site"
  python3 - "$site" "$n" <<EOF
import sys, types
sys.path.insert(0, "scripts")
import bench_ingest as b
args = types.SimpleNamespace(sim_mounts=max(int(sys.argv[2]), 1), sim_port=$SIM_PORT,
                             receive_batch_ms=None, decoder_workers=0)
b.write_site(sys.argv[1], int(sys.argv[2]), "shared", 2.0, args, $HTTP_PORT, 16)
EOF
  valgrind --tool=callgrind --callgrind-out-file="$site/cg" "$BIN" run --site "$site" >"$site/log" 2>&1 &
  RUN=$!
  local streaming=-1
  for _ in $(seq 1 150); do
    streaming=$(curl -s -m 20 "127.0.0.1:$HTTP_PORT/api/cameras" |
      python3 -c "import json,sys; print(sum(c['state']=='streaming' for c in json.load(sys.stdin)))" 2>/dev/null || echo -1)
    [ "$streaming" = "$n" ] && break
    sleep 2
  done
  [ "$streaming" = "$n" ] || { echo "only $streaming of $n cameras streamed under callgrind" >&2; exit 1; }
  sleep 10
  counts() { curl -s -m 60 "127.0.0.1:$HTTP_PORT/api/cameras" | python3 -c "import json,sys; c=json.load(sys.stdin); print(sum(x['frames_decoded'] for x in c), sum(x['units_received'] for x in c), sum(x['frames_dropped'] for x in c))"; }
  local f0 u0 d0 f1 u1 d1 t0 t1
  read -r f0 u0 d0 < <(counts)
  callgrind_control -z $RUN >/dev/null 2>&1
  t0=$(date +%s.%N)
  sleep "$WINDOW"
  callgrind_control -d $RUN >/dev/null 2>&1
  t1=$(date +%s.%N)
  read -r f1 u1 d1 < <(counts)
  kill $RUN; wait $RUN 2>/dev/null || true
  echo "$(ir "$(ls "$site"/cg.* | tail -n 1)") $(python3 -c "print($t1 - $t0)") $((f1 - f0)) $((u1 - u0)) $((d1 - d0))"
}

echo "live: $N cameras under callgrind" >&2
live "$N" >"$WORK/live"
read -r IR_N T_N FRAMES UNITS DROPPED <"$WORK/live"
echo "idle: no camera under callgrind" >&2
live 0 >"$WORK/idle"
read -r IR_0 T_0 _ _ _ <"$WORK/idle"

python3 - "$FLOOR_KF" "$IR_N" "$T_N" "$IR_0" "$T_0" "$N" "$FRAMES" "$UNITS" "$DROPPED" <<'EOF'
import sys
floor_kf, ir_n, t_n, ir_0, t_0, n, frames, units, dropped = map(float, sys.argv[1:])
floor = floor_kf / 2.0  # one keyframe every 2 s
idle = ir_0 / t_0
live = ir_n / (n * t_n)
net = (ir_n - idle * t_n) / (n * t_n)
print(f"floor: {floor_kf / 1e6:.2f} M instructions per keyframe = {floor / 1e6:.2f} M per camera-second")
print(f"live, {int(n)} cameras, {t_n:.1f} s: {live / 1e6:.2f} M per camera-second "
      f"({net / 1e6:.2f} M net of the idle process's {idle / 1e6:.2f} M per second)")
print(f"ratio to the floor: {live / floor:.3f} (net {net / floor:.3f})")
print(f"kept up under callgrind: {units / (n * t_n):.1f} access units per camera-second (25 sent), "
      f"{frames:.0f} frames for {units / 50:.0f} due, {dropped:.0f} dropped")
EOF
