"""Trains StreetNet on the rendered train split (models/.cache/train.npz).

Recipe: AdamW (lr 2e-3, wd 5e-4), batch 16, 1000 steps (~5.3 epochs of 3000 pictures), linear
warm-up (100 steps) then cosine decay, EMA of the weights (decay 0.995, the EMA is what gets
exported), horizontal flips and brightness/contrast
jitter. Assignment: SimOTA-lite (YOLOX) — candidates are anchor points inside the box and
within 2.5 strides of its centre; cost = class cost + 3 * -log(IoU); each box takes its
dynamic-k (sum of its top-10 IoUs, at least 2) cheapest candidates (+0.5 x centre distance in
strides); an anchor claimed twice goes to the cheaper box. Losses: BCE on all class scores
(sum / positives) with target 0.5 + 0.5 x IoU at positives, GIoU (x5) and smooth-L1 on
(centre offset, w, h) in stride units for positives.

Checkpoints: models/.cache/ckpt_<step>.pt at every eighth of the run and at the end.
Usage: python3 train.py [--steps N] [--threads 2] [--seed 0]
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from net import StreetNet, NC  # noqa: E402

CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache")


def box_iou_pairs(a, b):
    """a [N,4], b [M,4] x1y1x2y2 -> [N,M]."""
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    aa = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    ab = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (aa[:, None] + ab[None, :] - inter + 1e-9)


def giou_loss(p, g):
    lt = torch.max(p[:, :2], g[:, :2])
    rb = torch.min(p[:, 2:], g[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    ap = (p[:, 2:] - p[:, :2]).clamp(min=0).prod(-1)
    ag = (g[:, 2:] - g[:, :2]).clamp(min=0).prod(-1)
    union = ap + ag - inter + 1e-9
    iou = inter / union
    clt = torch.min(p[:, :2], g[:, :2])
    crb = torch.max(p[:, 2:], g[:, 2:])
    carea = (crb - clt).clamp(min=0).prod(-1) + 1e-9
    return 1 - (iou - (carea - union) / carea), iou


@torch.no_grad()
def simota(pts, strides, pbox, plogit, gt_cls, gt_box, radius=2.5):
    """Returns (anchor index, gt index) pairs for one image."""
    G = gt_box.shape[0]
    cx = (gt_box[:, 0] + gt_box[:, 2]) / 2
    cy = (gt_box[:, 1] + gt_box[:, 3]) / 2
    px, py = pts[:, 0][None], pts[:, 1][None]
    in_box = (px > gt_box[:, 0:1]) & (px < gt_box[:, 2:3]) & (py > gt_box[:, 1:2]) & (py < gt_box[:, 3:4])
    r = radius * strides[None]
    in_ctr = ((px - cx[:, None]).abs() < r) & ((py - cy[:, None]).abs() < r)
    cand = (in_box | in_ctr).any(0)
    idx = cand.nonzero().squeeze(1)
    if idx.numel() == 0:
        return idx, idx
    ious = box_iou_pairs(gt_box, pbox[idx])  # G, C
    p = torch.sigmoid(plogit[idx][:, gt_cls].T).clamp(1e-6, 1 - 1e-6)  # G, C
    cls_cost = -torch.log(p)
    both = in_box[:, idx] & in_ctr[:, idx]
    # centre distance in strides breaks ties among candidates with no overlap yet (tiny boxes)
    dist = torch.hypot(px[:, idx] - cx[:, None], py[:, idx] - cy[:, None]) / strides[idx][None]
    cost = cls_cost + 3.0 * -torch.log(ious + 1e-8) + 1e5 * (~both) + 0.5 * dist
    topk = torch.topk(ious, min(10, idx.numel()), dim=1).values
    k = topk.sum(1).int().clamp(min=2)  # at least 2 positives, also for tiny boxes
    match = torch.zeros_like(cost, dtype=torch.bool)
    for g in range(G):
        _, pos = torch.topk(cost[g], int(k[g]), largest=False)
        match[g, pos] = True
    multi = match.sum(0) > 1
    if multi.any():
        best = cost[:, multi].argmin(0)
        match[:, multi] = False
        match[best, multi.nonzero().squeeze(1)] = True
    g_idx, c_idx = match.nonzero(as_tuple=True)
    # a box with no anchor inside both regions (a tiny box) still gets its cheapest candidates
    return idx[c_idx], g_idx


def compute_loss(model, images, targets):
    pts, strides, cxcywh, logits = model.raw(images)
    B, A, _ = cxcywh.shape
    pbox = torch.cat([cxcywh[..., :2] - cxcywh[..., 2:] / 2, cxcywh[..., :2] + cxcywh[..., 2:] / 2], -1)
    cls_t = torch.zeros_like(logits)
    pos_p, pos_g, pos_l, pos_a = [], [], [], []
    for b in range(B):
        t = targets[b]
        if t.shape[0] == 0:
            continue
        gcls, gbox = t[:, 0].long(), t[:, 1:5]
        a_idx, g_idx = simota(pts, strides, pbox[b].detach(), logits[b].detach(), gcls, gbox)
        if a_idx.numel() == 0:
            continue
        pb = pbox[b, a_idx]
        gb = gbox[g_idx]
        with torch.no_grad():
            iou = box_iou_pairs(pb, gb).diagonal().clamp(min=0.0)
        # IoU-aware but never small: with no objectness branch, IoU-valued targets alone kept
        # the scores of small objects (manholes) near zero early in training
        cls_t[b, a_idx, gcls[g_idx]] = 0.5 + 0.5 * iou
        pos_p.append(pb)
        pos_g.append(gb)
        s = strides[a_idx][:, None]
        pa = pts[a_idx]
        g_cwh = torch.cat([(gb[:, :2] + gb[:, 2:]) / 2 - pa, gb[:, 2:] - gb[:, :2]], 1) / s
        p_cwh = torch.cat([cxcywh[b, a_idx, :2] - pa, cxcywh[b, a_idx, 2:]], 1) / s
        pos_l.append((p_cwh, g_cwh))
    npos = max(1, sum(p.shape[0] for p in pos_p))
    loss_cls = F.binary_cross_entropy_with_logits(logits, cls_t, reduction="sum") / npos
    if pos_p:
        pb, gb = torch.cat(pos_p), torch.cat(pos_g)
        lg, _ = giou_loss(pb, gb)
        loss_box = lg.sum() / npos
        pl = torch.cat([x[0] for x in pos_l])
        gl = torch.cat([x[1] for x in pos_l])
        loss_l1 = F.smooth_l1_loss(pl, gl, reduction="sum", beta=0.5) / npos / 4
    else:
        loss_box = loss_l1 = logits.sum() * 0
    return loss_cls + 5.0 * loss_box + 1.0 * loss_l1, (loss_cls.item(), loss_box.item(), loss_l1.item(), npos / B)


class EMA:
    def __init__(self, model, decay=0.995):
        import copy
        self.m = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0
        for p in self.m.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / 100))
        msd = model.state_dict()
        for k, v in self.m.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def load_split(name):
    z = np.load(os.path.join(CACHE, f"{name}.npz"))
    imgs = z["images"]
    lab = z["labels"]
    per = [[] for _ in range(len(imgs))]
    for i, c, x1, y1, x2, y2 in lab:
        per[int(i)].append((c, x1, y1, x2, y2))
    per = [np.array(p, np.float32).reshape(-1, 5) for p in per]
    return imgs, per


def batch_aug(imgs, labels, idx, rng, train=True):
    x = torch.from_numpy(imgs[idx]).permute(0, 3, 1, 2).float() / 255.0
    ts = []
    for j, i in enumerate(idx):
        t = labels[i].copy()
        if train and rng.random() < 0.5:
            x[j] = x[j].flip(-1)
            w = x.shape[-1]
            t[:, [1, 3]] = w - t[:, [3, 1]]
        ts.append(torch.from_numpy(t))
    if train:
        B = x.shape[0]
        gain = torch.from_numpy(rng.uniform(0.7, 1.3, (B, 1, 1, 1)).astype(np.float32))
        bias = torch.from_numpy(rng.uniform(-0.08, 0.08, (B, 1, 1, 1)).astype(np.float32))
        chan = torch.from_numpy(rng.uniform(0.9, 1.1, (B, 3, 1, 1)).astype(np.float32))
        # keep the letterbox borders black, as the pipeline delivers them
        border = (x.sum(1, keepdim=True) == 0)
        x = (x * gain * chan + bias).clamp(0, 1)
        x = torch.where(border, torch.zeros_like(x), x)
    return x, ts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--split", default="train", help="comma-separated cached splits")
    ap.add_argument("--out", default=CACHE)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    parts = [load_split(sp) for sp in args.split.split(",")]
    imgs = np.concatenate([p[0] for p in parts])
    labels = [l for p in parts for l in p[1]]
    del parts
    n = len(imgs)
    model = StreetNet().to(memory_format=torch.channels_last)  # faster oneDNN convolutions on CPU
    ema = EMA(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}],
                            lr=args.lr, betas=(0.9, 0.99))
    warm = min(100, args.steps // 10)
    marks = {args.steps * k // 8 for k in range(1, 9)}
    t0 = time.time()
    order = rng.permutation(n)
    pos = 0
    hist = []
    for step in range(1, args.steps + 1):
        lr = args.lr * (step / warm if step <= warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / (args.steps - warm))) * 0.98 + 0.02)
        for g in opt.param_groups:
            g["lr"] = lr
        if pos + args.batch > n:
            order = rng.permutation(n)
            pos = 0
        idx = np.sort(order[pos:pos + args.batch])
        pos += args.batch
        x, ts = batch_aug(imgs, labels, idx, rng)
        x = x.contiguous(memory_format=torch.channels_last)
        model.train()
        loss, parts = compute_loss(model, x, ts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        ema.update(model)
        hist.append([loss.item(), *parts])
        if step % 25 == 0 or step == 1:
            h = np.mean(hist[-25:], 0)
            el = time.time() - t0
            print(f"step {step}/{args.steps} lr {lr:.5f} loss {h[0]:.3f} cls {h[1]:.3f} giou {h[2]:.3f} "
                  f"l1 {h[3]:.3f} pos/img {h[4]:.1f}  {el:.0f}s ({el / step:.2f}s/step, eta {el / step * (args.steps - step) / 60:.1f} min)",
                  flush=True)
        if step in marks:
            path = os.path.join(args.out, f"ckpt_{step}.pt")
            torch.save({"step": step, "ema": ema.m.state_dict(), "model": model.state_dict(),
                        "args": vars(args), "elapsed_s": time.time() - t0}, path)
            print(f"saved {path}", flush=True)
    print(f"done in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
