"""Single-frame fixtures for Rust tests: models/street/fixtures/*.png + *.json.

    open_manhole.png        640x360 RGB source frame (day, clear, no blur/JPEG), one open manhole and
                            nothing else labelled; its box in open_manhole.json (source pixels)
    closed_manhole.png      640x360, one closed cover only (labelled manhole_closed), nothing open
    open_manhole_input.png  open_manhole.png letterboxed to the model input, 384x224 (scale 0.6, bilinear,
                            4 black rows top and bottom): feed it as is; box in input pixels in its .json

Each .json: {"image", "width", "height", "seed", "letterbox": {...}, "boxes": [{"class", "box": [x1,y1,x2,y2]}],
"detections": {"<model>": [...]}} where detections are what models/street/model.onnx (and street-v0)
report through the Rust-equivalent decoder at the manifest thresholds (boxes in the image's own
pixels), so tests can assert against real inference.

    python3 make_fixtures.py [OUT_DIR]
"""
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scene as S  # noqa: E402

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def clean_scene(seed, kind):
    for k in range(500):
        rng = np.random.default_rng([seed, k])
        sc = S.make_scene(rng, seed=seed, time_of_day="day", weather="clear", populate=False)
        sc.post.update(blur=0.0, noise=1.0, jpeg=0, motion=0.0)
        sc.light.update(shadow_len=0.0)
        pt = S.sample_ground(sc, rng, ("road", "walk"), max_depth=14, margin=150)
        if pt is None:
            continue
        s, t, X, Z = pt
        o = S.Obj(kind, X, Z, dict(r=0.4, pattern=2, col=95.0, rust=0.0, contrast=0.9, offset=35.0, frame=0.0,
                                   depth_shade=0.1, rim=150.0, snow=0.0, fence=False, fence_r=1.0, fence_style=0,
                                   water=0.0))
        b = S.ground_box(sc.cam, X, Z, 0.46)
        if not S.box_ok(b, 24, 12, 1.0):
            continue
        sc.objects.append(o)
        img, boxes = S.render(sc, np.random.default_rng([seed, k, 1]))
        if len(boxes) == 1:
            return img, boxes, [seed, k]
    raise RuntimeError("no fixture scene")


def model_detections(img_input, lb):
    """Runs models/street*/model.onnx (when present) on a 384x224 input image."""
    out = {}
    try:
        import onnxruntime as ort  # noqa: F401
        import evaluate
        import tomllib
    except ImportError:
        return out
    for name in ("street", "street-v0"):
        onnx_path = os.path.join(MODELS, name, "model.onnx")
        toml_path = os.path.join(MODELS, name, "model.toml")
        if not (os.path.exists(onnx_path) and os.path.exists(toml_path)):
            continue
        man = tomllib.load(open(toml_path, "rb"))
        th = [c["score_threshold"] for c in man["classes"]]
        sess = evaluate.session(onnx_path)
        y = sess.run(None, {"images": img_input.astype(np.float32).transpose(2, 0, 1)[None] / 255.0})[0][0]
        dets = evaluate.decode(y, th)
        res = []
        for c, s, x1, y1, x2, y2 in dets:
            if lb is not None:
                x1, y1, x2, y2 = [(v - o) / lb[0] for v, o in ((x1, lb[1]), (y1, lb[2]), (x2, lb[1]), (y2, lb[2]))]
            res.append({"class": S.CLASSES[c], "score": round(s, 3), "box": [round(v, 1) for v in (x1, y1, x2, y2)]})
        out[name] = res
    return out


def write(out_dir, name, img, boxes, seed, note, lb=None, src_for_model=None):
    cv2.imwrite(os.path.join(out_dir, name + ".png"), img[:, :, ::-1])
    h, w = img.shape[:2]
    doc = {"image": name + ".png", "width": w, "height": h, "seed": seed, "note": note,
           "boxes": [{"class": S.CLASSES[c], "box": [round(v, 1) for v in b]} for c, *b in boxes]}
    if lb is not None:
        doc["letterbox"] = lb
    inp = src_for_model if src_for_model is not None else img
    scale, px, py, _, _ = S.letterbox_params()
    doc["detections"] = model_detections(S.letterbox(inp) if inp.shape[1] == S.W else inp,
                                         (scale, px, py) if inp.shape[1] == S.W else None)
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(name, w, "x", h, doc["boxes"], doc["detections"])


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(MODELS, "street", "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    img, boxes, seed = clean_scene(5_000_001, "manhole_open")
    write(out_dir, "open_manhole", img, boxes, seed,
          "640x360 source frame, day, clear; exactly one labelled object, an open manhole (box in source pixels).")
    img2, boxes2, seed2 = clean_scene(5_000_002, "manhole_closed")
    write(out_dir, "closed_manhole", img2, boxes2, seed2,
          "640x360 source frame, day, clear; exactly one labelled object, a closed cover: no open manhole.")
    scale, px, py, nw, nh = S.letterbox_params()
    inp = S.letterbox(img)
    write(out_dir, "open_manhole_input", inp, S.boxes_to_input(boxes), seed,
          "open_manhole.png letterboxed to the model input 384x224 (scale 0.6, bilinear, black rows 0-3 and "
          "220-223); box in input pixels. Feed as is: RGB / 255, NCHW.",
          lb={"scale": scale, "pad_x": px, "pad_y": py, "source_width": S.W, "source_height": S.H})


if __name__ == "__main__":
    main()
