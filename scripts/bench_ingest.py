#!/usr/bin/env python3
"""End-to-end ingest throughput: the sitcenter process alone, against simulated cameras.

Starts `sitcenter rtsp-sim` (its own process) and, for each camera count and sampling
mode, a `sitcenter run` on a generated site; once every camera streams, it samples the
run process's CPU time, RSS and threads from /proc over a window, and counts the sampled
frames delivered against those expected. A run with zero cameras gives the process's
fixed cost, which is subtracted for the per-camera RSS and thread figures.

Usage: python3 scripts/bench_ingest.py --bin target/release/sitcenter \
           [--cameras 10,50,200] [--modes keyframes,all] [--window 20] [--media FILE]
Prints a Markdown table (the one in docs/performance.md).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def proc_sample(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / CLK  # utime + stime
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return cpu_s, rss, threads


def cameras_api(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/cameras", timeout=60) as r:
        return json.load(r)


def write_site(d, n, mode, interval, sim_port, http_port):
    with open(os.path.join(d, "site.toml"), "w") as f:
        f.write(
            "[site]\nname = \"bench\"\nbounds = { south = 51.0, west = 71.0, north = 51.5, east = 72.0 }\n"
            "[ingest]\nmax_concurrent_connects = 64\nframe_queue_capacity = 1024\n"
            f"[http]\nlisten = \"127.0.0.1:{http_port}\"\n"
        )
    with open(os.path.join(d, "cameras.toml"), "w") as f:
        f.write(f'[defaults]\nsampling = {{ mode = "{mode}", interval_s = {interval} }}\n')
        for i in range(1, n + 1):
            f.write(
                f'[[camera]]\nid = "c{i:04d}"\nname = "bench {i}"\n'
                f'url = "rtsp://127.0.0.1:{sim_port}/cam/{i}"\nlat = 51.2\nlon = 71.4\naddress = "bench"\n'
            )


def run_case(binary, n, mode, interval, sim_port, window, settle):
    http_port = free_port()
    with tempfile.TemporaryDirectory() as d:
        write_site(d, n, mode, interval, sim_port, http_port)
        proc = subprocess.Popen([binary, "run", "--site", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(http_port)
            deadline = time.time() + 120
            while True:
                cams = cameras_api(http_port)
                if all(c["state"] == "streaming" for c in cams):
                    break
                if time.time() > deadline:
                    bad = [c["id"] for c in cams if c["state"] != "streaming"]
                    sys.exit(f"N={n} {mode}: not streaming after 120 s: {bad[:10]}")
                time.sleep(0.5)
            time.sleep(settle)
            before = {c["id"]: c["frames_decoded"] for c in cameras_api(http_port)}
            cpu0, _, _ = proc_sample(proc.pid)
            t0 = time.time()
            rss_max = threads_max = 0
            while time.time() - t0 < window:
                time.sleep(1)
                _, rss, threads = proc_sample(proc.pid)
                rss_max, threads_max = max(rss_max, rss), max(threads_max, threads)
            cpu1, _, _ = proc_sample(proc.pid)
            elapsed = time.time() - t0
            after = cameras_api(http_port)
            delivered = [c["frames_decoded"] - before.get(c["id"], 0) for c in after]
            expected_each = elapsed / interval
            return {
                "n": n,
                "mode": mode,
                "cpu_ms_per_cam_s": (cpu1 - cpu0) * 1000 / (max(n, 1) * elapsed),
                "cpu_cores": (cpu1 - cpu0) / elapsed,
                "rss": rss_max,
                "threads": threads_max,
                "delivered_ratio": (sum(delivered) / (n * expected_each)) if n else 1.0,
                "min_per_camera": min(delivered) if delivered else 0,
                "expected_per_camera": expected_each,
            }
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sitcenter")
    ap.add_argument("--cameras", default="10,50,200")
    ap.add_argument("--modes", default="keyframes,all")
    ap.add_argument(
        "--all-max", type=int, default=50,
        help="largest camera count run with decode-every-frame (200 would need ~4 cores)",
    )
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--media", default="test-media/synthetic-360p.mp4")
    args = ap.parse_args()
    counts = [int(c) for c in args.cameras.split(",")]
    sim_port = free_port()
    sim = subprocess.Popen(
        [args.bin, "rtsp-sim", "--port", str(sim_port), "--cameras", str(max(counts)), "--media", args.media],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(sim_port)
        base = run_case(args.bin, 0, "keyframes", args.interval, sim_port, 5, 1)
        rows = []
        for n in counts:
            for mode in args.modes.split(","):
                if mode == "all" and n > args.all_max:
                    continue
                r = run_case(args.bin, n, mode, args.interval, sim_port, args.window, args.settle)
                r["rss_per_cam_mb"] = (r["rss"] - base["rss"]) / n / 1e6
                r["threads_per_cam"] = (r["threads"] - base["threads"]) / n
                rows.append(r)
                print(json.dumps(r), file=sys.stderr)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    print(f"Process with no cameras: RSS {base['rss']/1e6:.1f} MB, {base['threads']} threads.\n")
    print("| cameras | sampling | CPU ms per camera-second | cores used | RSS per camera (MB) | threads per camera | sampled frames delivered / expected | fewest frames of one camera (expected) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['n']} | {r['mode']} | {r['cpu_ms_per_cam_s']:.2f} | {r['cpu_cores']:.2f} | {r['rss_per_cam_mb']:.2f} | "
            f"{r['threads_per_cam']:.1f} | {100*r['delivered_ratio']:.1f} % | {r['min_per_camera']} ({r['expected_per_camera']:.1f}) |"
        )
    by = {(r["n"], r["mode"]): r for r in rows}
    print("\nRatio decode-every-frame / keyframes-only (CPU per camera-second):")
    for n in counts:
        if (n, "all") in by and (n, "keyframes") in by:
            print(f"- {n} cameras: {by[(n, 'all')]['cpu_ms_per_cam_s'] / by[(n, 'keyframes')]['cpu_ms_per_cam_s']:.1f} ×")


if __name__ == "__main__":
    main()
