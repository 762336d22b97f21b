"""Renders a split of letterboxed training pictures into models/.cache/<split>.npz.

Splits and their seeds (disjoint; the test split is never trained on or used for choosing
anything):
    train  seeds 1_000_000 + i  (3000 pictures)
    train2 seeds 1_003_000 + i  (optional extra pictures; not used by the committed models)
    val    seeds 2_000_000 + i   (score thresholds are chosen here)
    test   seeds 3_000_000 + i   (held-out figures in models/README.md)
Clips and fixtures use seeds from 4_000_000 and 5_000_000 (make_clips.py, make_fixtures.py).

Each picture is rendered at 640x360 (scene.py) and letterboxed to the model input 384x224 with
the same arithmetic as src/domain/frame.rs (scale 0.6 -> 384x216, 4 black rows top and bottom).
Usage: python3 dataset.py SPLIT COUNT [WORKERS]
"""
import os
import sys
import time
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scene  # noqa: E402

SEED_BASE = {"train": 1_000_000, "train2": 1_003_000, "val": 2_000_000, "test": 3_000_000}
CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache")


def one(seed):
    img, boxes = scene.render_seed(seed)
    return scene.letterbox(img), scene.boxes_to_input(boxes), boxes


def build(split, count, workers=2):
    os.makedirs(CACHE, exist_ok=True)
    seeds = [SEED_BASE[split] + i for i in range(count)]
    t0 = time.time()
    with Pool(workers) as pool:
        res = pool.map(one, seeds, chunksize=16)
    imgs = np.stack([r[0] for r in res])
    lab, src = [], []
    for i, (_, b, bs) in enumerate(res):
        for c, x1, y1, x2, y2 in b:
            lab.append((i, c, x1, y1, x2, y2))
        for c, x1, y1, x2, y2 in bs:
            src.append((i, c, x1, y1, x2, y2))
    path = os.path.join(CACHE, f"{split}.npz")
    np.savez(path, images=imgs, labels=np.array(lab, np.float32).reshape(-1, 6),
             source_labels=np.array(src, np.float32).reshape(-1, 6), seeds=np.array(seeds))
    counts = np.bincount(np.array([l[1] for l in lab], int), minlength=len(scene.CLASSES))
    print(f"{split}: {count} pictures, {len(lab)} boxes {dict(zip(scene.CLASSES, counts.tolist()))} "
          f"in {time.time() - t0:.0f}s -> {path}", flush=True)


if __name__ == "__main__":
    build(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 2)
