#!/usr/bin/env python3
"""Detector throughput, Rust against a Python onnxruntime + OpenCV loop, in one run.

Runs `cargo bench --bench detect` (criterion: preprocessing, NMS, and the model at each
batch size, one ONNX Runtime thread) and then, in this process, the loop a Python service
would run on the same model and the same frames: OpenCV letterbox, normalisation to NCHW,
`InferenceSession.run`, numpy decode and OpenCV class-aware NMS, also one thread. Prints a
markdown table of frames per second per core for each batch size.

    bash scripts/bench_detect.sh [--model models/street/model.toml]

(bench_detect.sh makes the virtual environment with onnxruntime==1.31.1 this needs.)
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time
import tomllib

import cv2
import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_manifest(path):
    with open(path, "rb") as f:
        m = tomllib.load(f)
    m["path"] = os.path.join(os.path.dirname(path), m["file"])
    return m


def frames_for(manifest_path):
    """The frames the Rust bench uses: the model's PNG fixtures, in name order (BGR)."""
    pngs = sorted(glob.glob(os.path.join(os.path.dirname(manifest_path), "fixtures", "*.png")))
    frames = [cv2.imread(p, cv2.IMREAD_COLOR) for p in pngs]
    frames = [f for f in frames if f is not None]
    if not frames:
        sys.exit(f"no fixtures/*.png beside {manifest_path}")
    return frames


def letterbox(bgr, w, h):
    sh, sw = bgr.shape[:2]
    scale = min(w / sw, h / sh)
    nw, nh = round(sw * scale), round(sh * scale)
    px, py = (w - nw) // 2, (h - nh) // 2
    resized = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = cv2.copyMakeBorder(resized, py, h - nh - py, px, w - nw - px, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return out, scale, px, py


def to_nchw(letterboxed_bgr):
    rgb = cv2.cvtColor(letterboxed_bgr, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0


def decode(out, thresholds, iou, max_det, scale, px, py):
    """YOLOv8 layout [4 + C, A] → boxes in source pixels after class-aware NMS."""
    boxes, scores = out[:4].T, out[4:].T
    cls = scores.argmax(1)
    best = scores[np.arange(len(cls)), cls]
    keep = best >= thresholds[cls]
    boxes, best, cls = boxes[keep], best[keep], cls[keep]
    if len(best) == 0:
        return []
    xywh = np.stack([boxes[:, 0] - boxes[:, 2] / 2, boxes[:, 1] - boxes[:, 3] / 2, boxes[:, 2], boxes[:, 3]], 1)
    # Class-aware NMS by offsetting each class's boxes apart (what Ultralytics does;
    # cv2.dnn.NMSBoxesBatched needs OpenCV >= 4.7, Debian 12 ships 4.6).
    shifted = xywh.copy()
    shifted[:, :2] += cls[:, None].astype(np.float32) * 4096.0
    idx = cv2.dnn.NMSBoxes(shifted.tolist(), best.tolist(), 0.0, iou)
    idx = np.array(idx).reshape(-1)[:max_det]
    result = []
    for i in idx:
        x, y, w, h = xywh[i]
        result.append((int(cls[i]), float(best[i]), (x - px) / scale, (y - py) / scale, (x + w - px) / scale, (y + h - py) / scale))
    return result


def python_loop(manifest, frames, batch, seconds):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(manifest["path"], opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    w, h = manifest["input_width"], manifest["input_height"]
    thresholds = np.array([c["score_threshold"] for c in manifest["classes"]], dtype=np.float32)
    iou = manifest.get("iou_threshold", 0.45)
    max_det = manifest.get("max_detections", 100)
    stages = {"letterbox": 0.0, "to_nchw": 0.0, "inference": 0.0, "decode_nms": 0.0}
    done, i = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        t0 = time.perf_counter()
        boxed = [letterbox(frames[(i + k) % len(frames)], w, h) for k in range(batch)]
        t1 = time.perf_counter()
        tensor = np.stack([to_nchw(b[0]) for b in boxed])
        t2 = time.perf_counter()
        out = sess.run(None, {name: tensor})[0]
        t3 = time.perf_counter()
        for k in range(batch):
            decode(out[k], thresholds, iou, max_det, *boxed[k][1:])
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[key] += dt
        done += batch
        i += batch
    total = time.perf_counter() - start
    return {"frames": done, "frames_per_s": done / total, "ms_per_frame": {k: v * 1000 / done for k, v in stages.items()}}


def criterion_estimate(group, bench):
    """Mean time per iteration (ns) that criterion stored for `group/bench`."""
    path = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "criterion", group, bench, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models/street/model.toml"))
    ap.add_argument("--batches", default="1,2,4,8,16")
    ap.add_argument("--seconds", type=float, default=5.0, help="per batch size in the Python loop")
    ap.add_argument("--skip-cargo", action="store_true", help="reuse the last criterion results")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    manifest = load_manifest(args.model)
    frames = frames_for(args.model)
    group = f"{manifest['name']}_model_batch"
    if not args.skip_cargo:
        env = dict(os.environ, SITCENTER_BENCH_MODEL=os.path.abspath(args.model))
        subprocess.run(["cargo", "bench", "--bench", "detect", "--", "--noplot", group + "|preprocess|letterbox|decode_yolov8|nms_"], cwd=ROOT, env=env, check=True)
    rows = []
    for batch in batches:
        py = python_loop(manifest, frames, batch, args.seconds)
        try:
            rust_ns = criterion_estimate(group, f"batch_{batch}")
            rust_fps = batch / (rust_ns / 1e9)
        except FileNotFoundError:
            rust_fps = None
        rows.append({"batch": batch, "rust_frames_per_s": rust_fps, "python": py})
    print(f"\nModel {manifest['name']} {manifest['version']} ({manifest['input_width']}x{manifest['input_height']}), "
          f"{len(frames)} frames, one ONNX Runtime thread each\n")
    print("| batch | Rust frames/s per core | Python frames/s per core (all / without letterbox) | Rust ÷ Python without letterbox | Python ms/frame: letterbox, to NCHW, inference, decode+NMS |")
    print("|---|---|---|---|---|")
    for r in rows:
        py = r["python"]
        split = ", ".join(f"{v:.2f}" for v in py["ms_per_frame"].values())
        ms = py["ms_per_frame"]
        py_no_lb = 1000.0 / (ms["to_nchw"] + ms["inference"] + ms["decode_nms"])
        py["frames_per_s_without_letterbox"] = py_no_lb
        ratio = f"{r['rust_frames_per_s'] / py_no_lb:.2f}×" if r["rust_frames_per_s"] else "—"
        rust = f"{r['rust_frames_per_s']:.1f}" if r["rust_frames_per_s"] else "—"
        print(f"| {r['batch']} | {rust} | {py['frames_per_s']:.1f} / {py_no_lb:.1f} | {ratio} | {split} |")
    # The Rust stages (criterion, same run), with the Python loop's cv2 letterbox beside them.
    stages = {}
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    paths = []
    for prefix in ("preprocess_", "letterbox_", "decode_yolov8", "nms_"):
        paths += sorted(glob.glob(os.path.join(target, "criterion", prefix + "*", "*", "new", "estimates.json")))
    for path in paths:
        bench_dir = os.path.dirname(os.path.dirname(path))
        name = f"{os.path.basename(os.path.dirname(bench_dir))}/{os.path.basename(bench_dir)}"
        with open(path) as f:
            stages[name] = json.load(f)["mean"]["point_estimate"] / 1e6
    py_lb = rows[0]["python"]["ms_per_frame"]["letterbox"] if rows else None
    if stages:
        print("\n| stage (criterion mean, same run) | ms |\n|---|---|")
        for name, ms in stages.items():
            print(f"| Rust: {name} | {ms:.3f} |")
        if py_lb is not None:
            print(f"| Python: cv2.resize + copyMakeBorder (BGR, fixtures), batch 1 | {py_lb:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": manifest["name"], "version": manifest["version"], "rows": rows,
                       "stages_ms": stages}, f, indent=2)


if __name__ == "__main__":
    main()
