"""Measures an exported ONNX file with onnxruntime, decoding exactly as src/detect/postprocess.rs:
per anchor the best class among those passing their own threshold, class-aware greedy NMS
(IoU 0.45, at most 100 boxes), boxes mapped back to 640x360 source pixels through the
letterbox. A detection is a true positive when it overlaps an unmatched ground-truth box of its
class by IoU >= 0.5 (greedy, best score first).

    python3 evaluate.py MODEL.onnx --split val --choose   # per-class thresholds: max F1 over 0.05..0.90
    python3 evaluate.py MODEL.onnx --split test --thresholds 0.4,0.5,...  # held-out figures
    python3 evaluate.py MODEL.onnx --bench                # ms per frame, batch 1, one thread
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scene  # noqa: E402

CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache")
IOU_NMS = 0.45
MAX_DET = 100


def session(path, threads=1):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def iou_one(b, bs):
    x1 = np.maximum(b[0], bs[:, 0])
    y1 = np.maximum(b[1], bs[:, 1])
    x2 = np.minimum(b[2], bs[:, 2])
    y2 = np.minimum(b[3], bs[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    a = (b[2] - b[0]) * (b[3] - b[1])
    ab = (bs[:, 2] - bs[:, 0]) * (bs[:, 3] - bs[:, 1])
    u = a + ab - inter
    return np.where(u > 0, inter / np.maximum(u, 1e-12), 0.0)


def decode(out, thresholds):
    """out [4 + C, A] -> list of (class, score, x1, y1, x2, y2) in input pixels (Rust decoder)."""
    C = len(thresholds)
    scores = out[4:4 + C]
    ok = scores >= np.asarray(thresholds, np.float32)[:, None]
    masked = np.where(ok, scores, -np.inf)
    cls = masked.argmax(0)
    best = masked.max(0)
    keep = np.isfinite(best)
    idx = np.nonzero(keep)[0]
    if idx.size == 0:
        return []
    cx, cy, w, h = out[0, idx], out[1, idx], out[2, idx], out[3, idx]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    sc = best[idx]
    cl = cls[idx]
    order = np.argsort(-sc, kind="stable")
    kept = []
    kb = []
    for i in order:
        if len(kept) == MAX_DET:
            break
        b = boxes[i]
        sup = False
        for j, k in enumerate(kept):
            if cl[k] == cl[i] and iou_one(b, kb[j][None])[0] > IOU_NMS:
                sup = True
                break
        if not sup:
            kept.append(i)
            kb.append(b)
    return [(int(cl[i]), float(sc[i]), *map(float, boxes[i])) for i in kept]


def to_source(dets):
    scale, px, py, _, _ = scene.letterbox_params()
    res = []
    for c, s, x1, y1, x2, y2 in dets:
        f = lambda x, y: (min(max((x - px) / scale, 0), scene.W), min(max((y - py) / scale, 0), scene.H))  # noqa
        a, b = f(x1, y1)
        cc, d = f(x2, y2)
        res.append((c, s, a, b, cc, d))
    return res


def run_model(sess, images, batch=16):
    name = sess.get_inputs()[0].name
    outs = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        outs.append(sess.run(None, {name: x})[0])
    return np.concatenate(outs)


def match(dets, gts, nc=len(scene.CLASSES)):
    """dets: per image lists of (c, s, box); gts: per image arrays [n,5]. Returns per class
    list of (score, is_tp) and number of ground-truth boxes."""
    scored = [[] for _ in range(nc)]
    ngt = np.zeros(nc, int)
    for d, g in zip(dets, gts):
        for c in range(nc):
            gb = g[g[:, 0] == c][:, 1:5]
            ngt[c] += len(gb)
            used = np.zeros(len(gb), bool)
            for det in sorted([x for x in d if x[0] == c], key=lambda x: -x[1]):
                tp = False
                if len(gb):
                    ious = iou_one(np.array(det[2:6]), gb)
                    ious[used] = -1
                    j = int(ious.argmax())
                    if ious[j] >= 0.5:
                        used[j] = True
                        tp = True
                scored[c].append((det[1], tp))
    return scored, ngt


def prf(scored, ngt, t):
    tp = sum(1 for s, ok in scored if s >= t and ok)
    fp = sum(1 for s, ok in scored if s >= t and not ok)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / ngt if ngt else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f, tp, fp


def load(split):
    z = np.load(os.path.join(CACHE, f"{split}.npz"))
    imgs, src = z["images"], z["source_labels"]
    gts = [src[src[:, 0] == i][:, 1:6] for i in range(len(imgs))]
    return imgs, gts


def evaluate(model, split, thresholds, threads=2, floor=0.01):
    sess = session(model, threads)
    imgs, gts = load(split)
    outs = run_model(sess, imgs)
    dets = [to_source(decode(o, thresholds)) for o in outs]
    scored, ngt = match(dets, gts)
    # AP50 over (almost) all scores: decoded again with every threshold at `floor`
    scored_all, _ = match([to_source(decode(o, [floor] * len(thresholds))) for o in outs], gts)
    res = {}
    for c, name in enumerate(scene.CLASSES):
        p, r, f, tp, fp = prf(scored[c], ngt[c], thresholds[c])
        ap = average_precision(scored_all[c], ngt[c])
        res[name] = dict(threshold=round(float(thresholds[c]), 2), precision=round(p, 3), recall=round(r, 3),
                         f1=round(f, 3), tp=tp, fp=fp, gt=int(ngt[c]), ap50=round(ap, 3))
    return res, len(imgs)


def average_precision(scored, ngt):
    if ngt == 0:
        return 0.0
    s = sorted(scored, key=lambda x: -x[0])
    tps = np.cumsum([1 if ok else 0 for _, ok in s])
    fps = np.cumsum([0 if ok else 1 for _, ok in s])
    if len(s) == 0:
        return 0.0
    rec = tps / ngt
    prec = tps / np.maximum(tps + fps, 1)
    mrec = np.concatenate([[0], rec, [1]])
    mpre = np.concatenate([[1], prec, [0]])
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return float(np.trapz(np.interp(x, mrec, mpre), x))


def choose(model, split="val", threads=2, floor=0.05):
    sess = session(model, threads)
    imgs, gts = load(split)
    outs = run_model(sess, imgs)
    dets = [to_source(decode(o, [floor] * len(scene.CLASSES))) for o in outs]
    scored, ngt = match(dets, gts)
    th = []
    for c in range(len(scene.CLASSES)):
        best = max(np.arange(0.05, 0.91, 0.01), key=lambda t: (round(prf(scored[c], ngt[c], t)[2], 4), t))
        th.append(round(float(best), 2))
    return th


def bench(model, n=200, threads=1, batch=1):
    sess = session(model, threads)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).random((batch, 3, scene.IN_H, scene.IN_W), dtype=np.float32)
    for _ in range(20):
        sess.run(None, {name: x})
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        t.append(time.perf_counter() - t0)
    t = np.array(t) * 1000 / batch
    return dict(batch=batch, threads=threads, median_ms=round(float(np.median(t)), 2),
                p90_ms=round(float(np.percentile(t, 90)), 2), min_ms=round(float(t.min()), 2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--split", default="test")
    ap.add_argument("--choose", action="store_true")
    ap.add_argument("--thresholds")
    ap.add_argument("--bench", action="store_true")
    a = ap.parse_args()
    if a.bench:
        print(json.dumps(bench(a.model)))
    elif a.choose:
        print(json.dumps(choose(a.model, a.split)))
    else:
        th = [float(x) for x in a.thresholds.split(",")]
        print(json.dumps(evaluate(a.model, a.split, th)[0], indent=1))
