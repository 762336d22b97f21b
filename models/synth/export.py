"""Exports a training checkpoint (its EMA weights) to ONNX, chooses per-class score thresholds
on the validation split, measures the held-out test split and the CPU latency, and writes
`model.onnx`, `model.toml` and `eval.json` into the output folder.

    python3 export.py CKPT OUT_DIR --name street --version 2026.11.23-1
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate  # noqa: E402
import scene  # noqa: E402
from net import StreetNet  # noqa: E402

# Incident categories raised by a class. Classes without one (closed covers, bins, cars,
# people) raise nothing by themselves: the manifest omits their `category` (cars and people
# still feed the zone rules of the offence detector).
CATEGORY = {
    "manhole_open": "open_manhole",
    "manhole_closed": "open_manhole",
    "dump": "illegal_dump",
    "bin": "overflowing_container",
    "car": "road_damage",
    "person": "yard_garbage",
}
NO_CATEGORY = {"manhole_closed", "bin", "car", "person"}


def export_onnx(ckpt, path):
    m = StreetNet()
    sd = torch.load(ckpt, map_location="cpu")
    m.load_state_dict(sd["ema"])
    m.eval()
    x = torch.zeros(1, 3, scene.IN_H, scene.IN_W)
    torch.onnx.export(m, x, path, input_names=["images"], output_names=["output0"], opset_version=17,
                      dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}}, do_constant_folding=True)
    model = onnx.load(path)
    # torch 1.13 leaves the output's class and anchor dimensions symbolic; pin them
    dims = model.graph.output[0].type.tensor_type.shape.dim
    dims[1].Clear()
    dims[1].dim_value = 4 + len(scene.CLASSES)
    dims[2].Clear()
    dims[2].dim_value = 1764
    dims[0].Clear()
    dims[0].dim_param = "batch"
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    # check against torch
    import onnxruntime as ort
    xr = torch.rand(3, 3, scene.IN_H, scene.IN_W)
    with torch.no_grad():
        ref = m(xr).numpy()
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"images": xr.numpy()})[0]
    err = float(np.abs(ref - got).max())
    assert got.shape == (3, 4 + len(scene.CLASSES), 1764), got.shape
    assert err < 1e-2, err
    return sd, err


def write_manifest(path, name, version, thresholds, note):
    lines = [
        f"# {note}",
        "# Made by models/synth (see models/README.md). Input: 640x360 frames letterboxed to 384x224",
        "# (scale 0.6, 4 black rows top and bottom), RGB 0..1.",
        f'name = "{name}"',
        f'version = "{version}"',
        'file = "model.onnx"',
        'layout = "yolo"',
        f"input_width = {scene.IN_W}",
        f"input_height = {scene.IN_H}",
        "iou_threshold = 0.45",
        "max_detections = 100",
        "",
    ]
    for c, t in zip(scene.CLASSES, thresholds):
        lines.append("[[classes]]")
        lines.append(f'name = "{c}"')
        lines.append(f"score_threshold = {t:.2f}")
        if c in NO_CATEGORY:
            lines.append("# no `category`: raises no incident by itself (cars and people feed the zone rules)")
        else:
            lines.append(f'category = "{CATEGORY[c]}"')
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("out")
    ap.add_argument("--name", default="street")
    ap.add_argument("--version", default="2026.11.23-1")
    ap.add_argument("--note", default="Street detector trained on synthetic scenes only.")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    onnx_path = os.path.join(a.out, "model.onnx")
    sd, err = export_onnx(a.ckpt, onnx_path)
    th = evaluate.choose(onnx_path, "val")
    test, n_test = evaluate.evaluate(onnx_path, "test", th)
    val, n_val = evaluate.evaluate(onnx_path, "val", th)
    lat1 = evaluate.bench(onnx_path, threads=1, batch=1)
    lat8 = evaluate.bench(onnx_path, n=30, threads=1, batch=8)
    write_manifest(os.path.join(a.out, "model.toml"), a.name, a.version, th, a.note)
    info = dict(name=a.name, version=a.version, checkpoint_step=sd["step"], train_args=sd["args"],
                train_elapsed_s=round(sd["elapsed_s"]), onnx_bytes=os.path.getsize(onnx_path),
                torch_vs_onnxruntime_max_abs_diff=err, thresholds=dict(zip(scene.CLASSES, th)),
                test_images=n_test, test_seeds="3000000..%d" % (3000000 + n_test - 1), test=test,
                val_images=n_val, val=val, latency_batch1=lat1, latency_batch8=lat8)
    with open(os.path.join(a.out, "eval.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
