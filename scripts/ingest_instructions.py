#!/usr/bin/env python3
"""User-space instructions of the ingest against the decode floor, counted by valgrind's
callgrind: a figure that does not move with the machine's load, clock or caches (the
CPU-time ratios in docs/performance.md do, by up to 2x on the 2-core VM). Kernel work
(TCP receive, syscalls, wake-ups) is not counted: callgrind sees user space only.

    python3 scripts/ingest_instructions.py [--bin BIN] [--cameras N] [--window S]

1. floor: `sitcenter decode-floor` under callgrind with 10 and 60 keyframes; the
   difference / 50 is the instructions of one keyframe decoded and letterboxed.
2. live: `sitcenter rtsp-sim` (native) serving N cameras and `sitcenter run` under
   callgrind on a site written by the throughput runner (scripts/bench_ingest.py); once
   every camera streams, the counters are zeroed, S seconds later dumped, and the cameras'
   frames and access units read from /api/cameras to check that the slowed process kept up.
3. the same with no camera: the process's fixed instructions per second.
Prints instructions per camera-second for both and their ratio. Needs valgrind.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_ingest as bench  # noqa: E402  (the runner's site writer and API helpers)


def instructions(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    sys.exit(f"{path}: no `summary:` line (callgrind did not finish)")


def floor_per_keyframe(binary, work):
    counts = {}
    for k in (10, 60):
        out = os.path.join(work, f"floor{k}")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        binary, "decode-floor", "--keyframes", str(k)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        counts[k] = instructions(out)
    return (counts[60] - counts[10]) / 50


def totals(port):
    cams = bench.cameras_api(port)
    return tuple(sum(c[key] for c in cams) for key in ("frames_decoded", "units_received", "frames_dropped"))


def live(binary, n, window, sim_port, work):
    """(instructions, seconds, frames, units, dropped) of `sitcenter run` with n cameras."""
    site = os.path.join(work, f"site{n}")
    os.makedirs(site)
    http_port = bench.free_port()
    args = bench.parser().parse_args(["--sim-mounts", str(max(n, 1))])
    args.sim_port = sim_port
    bench.write_site(site, n, "shared", 2.0, args, http_port, 16)
    out = os.path.join(site, "cg")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                             binary, "run", "--site", site],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bench.wait_port(http_port, limit=300)
        deadline = time.time() + 300
        while sum(c["state"] == "streaming" for c in bench.cameras_api(http_port)) < n:
            if time.time() > deadline:
                sys.exit(f"not every one of {n} cameras streamed under callgrind within 300 s")
            time.sleep(2)
        time.sleep(10)
        before = totals(http_port)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        t0 = time.time()
        time.sleep(window)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        seconds = time.time() - t0
        after = totals(http_port)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    dumps = sorted(p for p in glob.glob(out + ".*") if p[len(out) + 1:].isdigit())
    if not dumps:
        sys.exit(f"callgrind wrote no dump for the {n}-camera run")
    return (instructions(dumps[-1]), seconds) + tuple(a - b for a, b in zip(after, before))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sitcenter")
    ap.add_argument("--cameras", type=int, default=10)
    ap.add_argument("--window", type=float, default=30.0)
    ap.add_argument("--media", default="test-media/synthetic-360p.mp4")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    binary = os.path.abspath(args.bin)
    with tempfile.TemporaryDirectory() as work:
        print("floor: decode-floor under callgrind (10 and 60 keyframes)", file=sys.stderr)
        floor_kf = floor_per_keyframe(binary, work)
        sim_port = bench.free_port()
        sim = subprocess.Popen(
            [binary, "rtsp-sim", "--port", str(sim_port), "--cameras", str(args.cameras),
             "--media", args.media, "--flaky", "0", "--stalling", "0", "--corrupt", "0",
             "--refusing", "0", "--secure", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            bench.wait_port(sim_port)
            print(f"live: {args.cameras} cameras under callgrind", file=sys.stderr)
            ir_n, t_n, frames, units, dropped = live(binary, args.cameras, args.window, sim_port, work)
            print("idle: no camera under callgrind", file=sys.stderr)
            ir_0, t_0, _, _, _ = live(binary, 0, args.window, sim_port, work)
        finally:
            sim.terminate()
            sim.wait(timeout=60)
    n = args.cameras
    floor = floor_kf / 2.0  # one keyframe every 2 s
    idle = ir_0 / t_0
    per_cam = ir_n / (n * t_n)
    net = (ir_n - idle * t_n) / (n * t_n)
    print(f"floor: {floor_kf / 1e6:.2f} M instructions per keyframe = {floor / 1e6:.2f} M per camera-second")
    print(f"live, {n} cameras, {t_n:.1f} s: {per_cam / 1e6:.2f} M per camera-second "
          f"({net / 1e6:.2f} M net of the idle process's {idle / 1e6:.2f} M per second)")
    print(f"ratio to the floor: {per_cam / floor:.3f} (net {net / floor:.3f})")
    print(f"kept up under callgrind: {units / (n * t_n):.1f} access units per camera-second (25 sent), "
          f"{frames} frames for {units / 50:.0f} due, {dropped} dropped")


if __name__ == "__main__":
    main()
