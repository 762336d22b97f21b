#!/usr/bin/env python3
"""End-to-end ingest throughput: the sitcenter process alone, against simulated cameras.

Starts `sitcenter rtsp-sim` (its own process) and, for each camera count and case, a
`sitcenter run` on a generated site; once every camera streams, it samples the run
process's CPU time, RSS and threads from /proc over a window, counts each camera's sampled
frames delivered against those expected, and reads the keyframe-arrival → frame-delivered
latency histogram from /metrics. A run with zero cameras gives the process's fixed cost,
which is subtracted for the per-camera RSS and thread figures. The simulator's own CPU is
recorded too: on a small machine it shares the cores and limits N.

Cases (`--cases`):
- `shared`: the default backend — retina on tokio + a shared pool of keyframe decoders
  (`rtsp_backend = "shared-decoder"`), one keyframe every `--interval` s;
- `pipeline`: one GStreamer pipeline per camera, delta units dropped before the decoder
  (`rtsp_backend = "pipeline"`, the issue 2 baseline);
- `all`: one pipeline per camera decoding every frame (the NVR approach);
- `shared-receive-only`: the default backend with every keyframe gated out (one an hour):
  what receiving alone costs (with `--receive-batch-ms` to compare read batching);
- `shared-per-packet`, `shared-no-tick`, `shared+detect`: the variants named in
  docs/performance.md.
The floor — CPU to decode and letterbox just the sampled keyframes, nothing received — is
measured first with `sitcenter decode-floor` on the same clip, decoder and analysis size:
back to back with one decoder, and with `--floor-paced` also at each row's keyframe rate
(N ÷ interval per second, the node's decoder workers), as a live node gets them.

Why a script and not a `sitcenter bench` subcommand: the figures must be those of a
`sitcenter run` process exactly as deployed (its runtime, HTTP, consumer thread), seen
from outside through /proc and its own API and /metrics — a harness inside the binary
would measure itself too.

Usage: python3 scripts/bench_ingest.py --bin target/release/sitcenter \\
           [--cameras 100,500,1000,2000] [--cases shared,pipeline,all] \\
           [--pipeline-max 200] [--all-max 50] [--window 20] [--json out.json] [--plot out.png] \\
           [--ingest receive_tick_ms=30 ...]   (any other [ingest] setting, for experiments)
Prints Markdown tables (the ones in docs/performance.md).
"""
import argparse
import json
import os
import re
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


def wait_port(port, limit=60):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def cpu_times(pid):
    """(user, system) CPU seconds of the process: utime and stime, read at one instant."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK, int(fields[12]) / CLK


def proc_sample(pid):
    cpu_s = sum(cpu_times(pid))
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return cpu_s, rss, threads


def get(port, path, timeout=120):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read()


def cameras_api(port):
    return json.loads(get(port, "/api/cameras"))


BUCKET = re.compile(r'^sitcenter_keyframe_to_frame_seconds_bucket\{le="([^"]+)"\} (\S+)$')
DETECT_BUCKET = re.compile(r'^sitcenter_keyframe_to_detection_seconds_bucket\{le="([^"]+)"\} (\S+)$')


def latency_buckets(port, pattern=BUCKET):
    out = []
    for line in get(port, "/metrics").decode().splitlines():
        m = pattern.match(line)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            out.append((le, float(m.group(2))))
    return out


def quantile(before, after, q):
    """q-quantile from the histogram's growth between two scrapes (linear in a bucket)."""
    deltas = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = deltas[-1][1] if deltas else 0
    if total <= 0:
        return None
    rank, lower, prev = q * total, 0.0, 0.0
    for le, count in deltas:
        if count >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * (rank - prev) / max(count - prev, 1e-9)
        lower, prev = le, count
    return lower


def camera_url(args, i):
    if args.sim_mounts:
        return f"rtsp://127.0.0.1:{args.sim_port}/shared/{(i - 1) % args.sim_mounts + 1}"
    return f"rtsp://127.0.0.1:{args.sim_port}/cam/{i}"


def write_site(d, n, case, interval, args, http_port, connects):
    backend = "pipeline" if case in ("pipeline", "all") else "shared-decoder"
    mode = "all" if case == "all" else "keyframes"
    # `shared-per-packet`: the new design reading each packet as it arrives (the default
    # reads each socket at most every receive_batch_ms = 100 and takes all that arrived).
    ingest_extra = "receive_batch_ms = 0\n" if case == "shared-per-packet" else ""
    detect = case == "shared+detect"
    if detect:
        # The street model's input; its [detect] section follows [http].
        ingest_extra += "analysis_width = 384\nanalysis_height = 224\n"
    if case == "shared-no-tick":
        # Sessions on the main runtime, parked in epoll_wait (tokio's normal mode).
        ingest_extra += "receive_tick_ms = 0\n"
    if case in ("shared", "shared-receive-only") and args.receive_batch_ms is not None:
        ingest_extra += f"receive_batch_ms = {args.receive_batch_ms}\n"
    if args.decoder_workers:
        ingest_extra += f"decoder_workers = {args.decoder_workers}\n"
    for setting in args.ingest:
        ingest_extra += setting + "\n"
    with open(os.path.join(d, "site.toml"), "w") as f:
        f.write(
            "[site]\nname = \"bench\"\nbounds = { south = 51.0, west = 71.0, north = 51.5, east = 72.0 }\n"
            f"[ingest]\nmax_concurrent_connects = {connects}\nframe_queue_capacity = 1024\n"
            f"rtsp_backend = \"{backend}\"\n{ingest_extra}"
            # Admission control off for the measurement: every camera is admitted.
            "decode_budget_ms_per_s = 1000000.0\n"
            f"[http]\nlisten = \"127.0.0.1:{http_port}\"\n"
        )
        if detect:
            model = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "models", "street", "model.toml"))
            f.write(
                f"[detect]\nmodels = {{ street = \"{model}\" }}\nevidence_dir = \"evidence\"\n"
                "[detect.detectors.manholes]\nmodel = \"street\"\nclasses = [\"manhole_open\"]\n"
                "[detect.detectors.dumps]\nmodel = \"street\"\nclasses = [\"dump\"]\n"
            )
    if case == "shared-receive-only":
        # Every keyframe gated out (one an hour): the CPU of receiving alone.
        interval = 3600.0
    with open(os.path.join(d, "cameras.toml"), "w") as f:
        f.write(f'[defaults]\nsampling = {{ mode = "{mode}", interval_s = {interval} }}\n')
        if detect:
            f.write('detectors = ["manholes", "dumps"]\n')
        for i in range(1, n + 1):
            f.write(
                f'[[camera]]\nid = "c{i:04d}"\nname = "bench {i}"\n'
                f'url = "{camera_url(args, i)}"\nlat = 51.2\nlon = 71.4\naddress = "bench"\n'
            )


def run_case(args, n, case, sim):
    http_port = free_port()
    with tempfile.TemporaryDirectory() as d:
        write_site(d, n, case, args.interval, args, http_port, args.connects)
        log = open(os.path.join(d, "run.log"), "w")
        proc = subprocess.Popen(
            [args.bin, "run", "--site", d], stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        try:
            wait_port(http_port)
            t_start = time.time()
            deadline = t_start + args.start_limit
            while True:
                cams = cameras_api(http_port)
                streaming = sum(c["state"] == "streaming" for c in cams)
                if streaming == n:
                    break
                if time.time() > deadline:
                    bad = [(c["id"], c["state"], c["reason_text"]) for c in cams if c["state"] != "streaming"]
                    print(f"N={n} {case}: {len(bad)} not streaming after {args.start_limit} s: {bad[:5]}",
                          file=sys.stderr)
                    break
                time.sleep(1)
            start_s = time.time() - t_start
            time.sleep(args.settle)
            before = {c["id"]: c["frames_decoded"] for c in cameras_api(http_port)}
            drops_before = {c["id"]: c["frames_dropped"] for c in cameras_api(http_port)}
            units_before = {c["id"]: c["units_received"] for c in cameras_api(http_port)}
            lat0 = latency_buckets(http_port)
            det0 = latency_buckets(http_port, DETECT_BUCKET)
            user0, system0 = cpu_times(proc.pid)
            cpu0 = user0 + system0
            sim0, _, _ = proc_sample(sim.pid)
            t0 = time.time()
            rss_max = threads_max = 0
            while time.time() - t0 < args.window:
                time.sleep(1)
                _, rss, threads = proc_sample(proc.pid)
                rss_max, threads_max = max(rss_max, rss), max(threads_max, threads)
            user1, system1 = cpu_times(proc.pid)
            cpu1 = user1 + system1
            sim1, _, _ = proc_sample(sim.pid)
            elapsed = time.time() - t0
            lat1 = latency_buckets(http_port)
            det1 = latency_buckets(http_port, DETECT_BUCKET)
            after = cameras_api(http_port)
            delivered = [c["frames_decoded"] - before.get(c["id"], 0) for c in after]
            # Sampled frames due = access units the camera sent in the window ÷ (fps × interval):
            # the same instants bound both counts, so cameras whose keyframes all fall on
            # the same phase do not read as 93 % or 107 % in a short window.
            units = [c["units_received"] - units_before.get(c["id"], 0) for c in after]
            due = sum(units) / (args.fps * args.interval)
            dropped = sum(c["frames_dropped"] - drops_before.get(c["id"], 0) for c in after)
            expected_each = elapsed / args.interval
            p50, p99 = quantile(lat0, lat1, 0.5), quantile(lat0, lat1, 0.99)
            d50, d99 = quantile(det0, det1, 0.5), quantile(det0, det1, 0.99)
            analysed = (det1[-1][1] - det0[-1][1]) if det0 and det1 else 0
            return {
                "n": n,
                "case": case,
                "start_s": start_s,
                "streaming_at_start": streaming,
                "cpu_ms_per_cam_s": (cpu1 - cpu0) * 1000 / (max(n, 1) * elapsed),
                "cpu_cores": (cpu1 - cpu0) / elapsed,
                # The rest is kernel time: TCP receive, syscalls, wake-ups.
                "cpu_user_share": (user1 - user0) / (cpu1 - cpu0) if cpu1 > cpu0 else None,
                "sim_cores": (sim1 - sim0) / elapsed,
                "rss": rss_max,
                "threads": threads_max,
                "delivered_ratio": (sum(delivered) / due) if n and due else (1.0 if not n else 0.0),
                "received_ratio": (sum(units) / (n * args.fps * elapsed)) if n else 1.0,
                "min_per_camera": min(delivered) if delivered else 0,
                "cameras_without_frames": sum(1 for x in delivered if x == 0),
                "expected_per_camera": expected_each,
                "dropped": dropped,
                "latency_p50_ms": None if p50 is None else p50 * 1000,
                "latency_p99_ms": None if p99 is None else p99 * 1000,
                "detect_p50_ms": None if d50 is None else d50 * 1000,
                "detect_p99_ms": None if d99 is None else d99 * 1000,
                "analysed_ratio": (analysed / sum(delivered)) if sum(delivered) else None,
            }
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def decode_floor(args, n=0):
    """Back to back with one decoder (n = 0), or at the keyframe rate of n cameras with the
    node's decoder workers, released every 10 ms as the receive threads release them."""
    how = ["--keyframes", str(args.floor_keyframes), "--workers", "1"]
    if n:
        # --workers 0: the node's default decoder count, as `sitcenter run` starts it.
        how = ["--rate", str(n / args.interval), "--seconds", str(args.floor_paced_s),
               "--workers", str(args.decoder_workers)]
    out = subprocess.run(
        [args.bin, "decode-floor", "--media", args.media, "--interval-s", str(args.interval)] + how,
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def plot(rows, floor, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = {
        "shared": "retina + shared keyframe decoders (new default)",
        "shared-per-packet": "same, reading every packet as it arrives (receive_batch_ms = 0)",
        "shared+detect": "same, with the street detector on every camera (384×224)",
        "shared-no-tick": "same, sessions on the main runtime (receive_tick_ms = 0)",
        "pipeline": "one GStreamer pipeline per camera, keyframes (baseline)",
        "all": "one pipeline per camera, decode every frame",
    }
    fig, ax = plt.subplots(figsize=(8, 5))
    for case, style in (("shared", "o-"), ("shared-no-tick", "x-"), ("shared-per-packet", "d-."), ("shared+detect", "v-"),
                        ("pipeline", "s--"), ("all", "^:")):
        pts = sorted((r["n"], r["cpu_ms_per_cam_s"], r["delivered_ratio"], r["dropped"]) for r in rows if r["case"] == case)
        if not pts:
            continue
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=labels[case])
        # Not served: frames dropped, or clearly fewer delivered than due (the window's
        # edges alone move the ratio by ±0.2 %).
        short = [p for p in pts if p[3] > 0 or p[2] < 0.99]
        if short:
            # Cameras that got no frames cost nothing to decode: these points are not comparable.
            ax.plot([p[0] for p in short], [p[1] for p in short], "o", markersize=11,
                    markerfacecolor="white", markeredgecolor=line.get_color(),
                    label=f"{case}: frames dropped, node not keeping up (not a valid cost)")
            for n, cost, ratio, _ in short:
                ax.annotate(f"{100 * ratio:.0f} % delivered", (n, cost), textcoords="offset points",
                            xytext=(6, 8), fontsize=7)
    paced = sorted((r["n"], r["floor_paced_ms_per_cam_s"]) for r in rows
                   if r["case"] == "shared" and r.get("floor_paced_ms_per_cam_s"))
    if paced:
        ax.plot([p[0] for p in paced], [p[1] for p in paced], "x:", color="grey",
                label="floor at the live keyframe rate (decode + letterbox, N ÷ 2 s keyframes per second)")
    ns = sorted({r["n"] for r in rows})
    ax.axhline(floor["cpu_ms_per_camera_second"], color="grey", linewidth=1,
               label=f"floor: decode + letterbox the sampled keyframes only ({floor['cpu_ms_per_camera_second']:.2f} ms)")
    ax.axhline(2.0, color="red", linewidth=0.8, linestyle="--", label="target ≤ 2 ms")
    ax.axhline(1.3 * floor["cpu_ms_per_camera_second"], color="orange", linewidth=0.8, linestyle="--",
               label=f"target ≤ 1.3 × floor ({1.3 * floor['cpu_ms_per_camera_second']:.2f} ms)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) for n in ns])
    ax.set_xlabel("simulated 360p cameras (N)")
    ax.set_ylabel("CPU ms per camera-second (sitcenter process)")
    ax.set_title("Ingest cost per camera, one keyframe per camera every 2 s (2-core VM)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parser():
    """The runner's options (scripts/ingest_instructions.py writes its sites with their defaults)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/sitcenter")
    ap.add_argument("--cameras", default="100,500,1000,2000")
    ap.add_argument("--cases", default="shared,pipeline,all")
    ap.add_argument("--pipeline-max", type=int, default=200,
                    help="largest N for the per-camera pipeline baseline (~4.5 ms × N must fit the cores)")
    ap.add_argument("--all-max", type=int, default=50,
                    help="largest N decoding every frame (~20 ms × N)")
    ap.add_argument("--pipeline-cameras", default="",
                    help="extra N for the baseline cases when below --cameras (e.g. 50,200)")
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--no-tick-max", type=int, default=1000,
                    help="largest N for the `shared-no-tick` case")
    ap.add_argument("--detect-max", type=int, default=500,
                    help="largest N for the `shared+detect` case (the street detector on every camera)")
    ap.add_argument("--floor-each", action="store_true",
                    help="measure the decode floor again right before each case and compare each row with it")
    ap.add_argument("--floor-paced", action="store_true",
                    help="also measure, before each shared case, the floor at that case's keyframe rate "
                         "(N / interval keyframes per second, the node's decoder workers)")
    ap.add_argument("--floor-paced-s", type=float, default=15.0, help="seconds of the paced floor")
    ap.add_argument("--receive-batch-ms", type=int, default=None,
                    help="[ingest] receive_batch_ms for the `shared` and `shared-receive-only` cases (default: the built-in 250)")
    ap.add_argument("--decoder-workers", type=int, default=0, help="[ingest] decoder_workers (0: the default)")
    ap.add_argument("--ingest", action="append", default=[], metavar="KEY=VALUE",
                    help="another [ingest] setting for every case, as TOML (repeatable), e.g. receive_tick_ms=20")
    ap.add_argument("--fps", type=float, default=25.0, help="the simulated cameras' frame rate")
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--start-limit", type=float, default=300.0)
    ap.add_argument("--connects", type=int, default=64)
    ap.add_argument("--floor-keyframes", type=int, default=2000)
    ap.add_argument("--media", default="test-media/synthetic-360p.mp4")
    ap.add_argument("--sim-mounts", type=int, default=0,
                    help="0: camera i plays /cam/i (a media per session); K: camera i plays "
                         "/shared/((i-1) %% K + 1), K medias shared by N/K sessions each (a cheaper simulator)")
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--from-json", help="print and plot earlier measurements instead of measuring")
    ap.add_argument("--plot", help="PNG of CPU per camera-second against N (needs matplotlib)")
    return ap


def main():
    args = parser().parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        report(args, saved["floor"], saved["base"], saved["rows"])
        return
    counts = [int(c) for c in args.cameras.split(",")]
    extra = [int(c) for c in args.pipeline_cameras.split(",") if c]
    cases = args.cases.split(",")
    floor = decode_floor(args)
    print(json.dumps({"floor": floor}), file=sys.stderr)
    args.sim_port = free_port()
    sim = subprocess.Popen(
        [args.bin, "rtsp-sim", "--port", str(args.sim_port),
         "--cameras", str(args.sim_mounts or max(counts + extra)),
         "--media", args.media, "--flaky", "0", "--stalling", "0", "--corrupt", "0",
         "--refusing", "0", "--secure", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        wait_port(args.sim_port)
        base = run_case(args, 0, "shared", sim)
        plan = []
        for n in sorted(set(counts + extra)):
            for case in cases:
                if case.startswith("shared") and n not in counts:
                    continue
                if case in ("pipeline", "shared-per-packet") and n > args.pipeline_max:
                    continue
                if case == "shared-no-tick" and n > args.no_tick_max:
                    continue
                if case == "shared+detect" and n > args.detect_max:
                    continue
                if case == "all" and n > args.all_max:
                    continue
                plan.append((n, case))
        for n, case in plan:
            # The floor again right before each case: it drifts by ±30 % over minutes on a
            # VM, so each row is compared with the floor measured next to it.
            r_floor = decode_floor(args)["cpu_ms_per_camera_second"] if args.floor_each else None
            paced = (decode_floor(args, n)["cpu_ms_per_camera_second"]
                     if args.floor_paced and case.startswith("shared") else None)
            r = run_case(args, n, case, sim)
            r["floor_ms_per_cam_s"] = r_floor
            r["floor_paced_ms_per_cam_s"] = paced
            r["rss_per_cam_mb"] = (r["rss"] - base["rss"]) / n / 1e6
            r["threads_per_cam"] = (r["threads"] - base["threads"]) / n
            rows.append(r)
            print(json.dumps(r), file=sys.stderr)
    finally:
        sim.terminate()
        try:
            sim.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sim.kill()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"floor": floor, "base": base, "rows": rows}, f, indent=1)
    report(args, floor, base, rows)


def report(args, floor, base, rows):
    if args.plot:
        plot(rows, floor, args.plot)
    fl = floor["cpu_ms_per_camera_second"]
    print(f"Floor (decode + letterbox {floor['frames_delivered']} keyframes of {args.media} to "
          f"{floor['width']}×{floor['height']} RGB, one decoder): {floor['cpu_ms_per_keyframe']:.2f} ms "
          f"per keyframe = {fl:.2f} ms per camera-second at one keyframe every {args.interval:g} s.")
    print(f"Process with no cameras: RSS {base['rss']/1e6:.1f} MB, {base['threads']} threads.\n")
    print("| cameras | ingest | CPU ms per camera-second | × floor | cores used (sim) | RSS per camera (MB) | "
          "threads (per camera) | stream received | sampled frames delivered / due | fewest of one camera (expected) | "
          "cameras without frames | dropped | keyframe → frame p50 / p99 (ms) | "
          "keyframe → detections p50 / p99 (ms), frames analysed | start-up (s) | × floor at the live rate (floor) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = {"shared": "shared decoders", "shared-per-packet": "shared decoders, read per packet",
             "shared+detect": "shared decoders + street detector",
             "shared-no-tick": "shared decoders, no receive tick",
             "shared-receive-only": "receive only (every keyframe gated out)",
             "pipeline": "pipeline per camera", "all": "pipeline, every frame"}
    for r in rows:
        print(
            f"| {r['n']} | {names[r['case']]} | {r['cpu_ms_per_cam_s']:.2f} | "
            f"{r['cpu_ms_per_cam_s']/(r.get('floor_ms_per_cam_s') or fl):.2f}"
            f"{'' if not r.get('floor_ms_per_cam_s') else ' (floor ' + format(r['floor_ms_per_cam_s'], '.2f') + ')'} | "
            f"{r['cpu_cores']:.2f} ({r['sim_cores']:.2f}) | {r['rss_per_cam_mb']:.2f} | "
            f"{r['threads']} ({r['threads_per_cam']:.2f}) | {100*r.get('received_ratio', float('nan')):.1f} % | "
            f"{100*r['delivered_ratio']:.2f} % | "
            f"{r['min_per_camera']} ({r['expected_per_camera']:.1f}) | {r['cameras_without_frames']} | "
            f"{r['dropped']} | {fmt(r['latency_p50_ms'], '.1f')} / {fmt(r['latency_p99_ms'], '.1f')} | "
            + (f"{fmt(r.get('detect_p50_ms'), '.1f')} / {fmt(r.get('detect_p99_ms'), '.1f')}, "
               f"{100 * r['analysed_ratio']:.1f} % | " if r.get("analysed_ratio") else "— | ") +
            f"{r['start_s']:.0f} | "
            + (f"{r['cpu_ms_per_cam_s'] / r['floor_paced_ms_per_cam_s']:.2f} ({r['floor_paced_ms_per_cam_s']:.2f}) |"
               if r.get("floor_paced_ms_per_cam_s") else "— |")
        )


if __name__ == "__main__":
    main()
