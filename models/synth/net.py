"""The `street` detector: a small anchor-free YOLO-style CNN (strides 8/16/32, one anchor point
per cell, no objectness), with the Ultralytics YOLOv8 output layout

    images  float32 [B, 3, 224, 384]  RGB 0..1, NCHW, letterboxed
    output0 float32 [B, 4 + 6, 1764]  rows cx, cy, w, h (input pixels), then 6 sigmoid scores

Anchors: 28x48 at stride 8, then 14x24 at stride 16, then 7x12 at stride 32, each level
row-major (1344 + 336 + 84 = 1764). Boxes: centre = anchor point + offset x stride (an anchor
may predict a box that does not contain it: small manholes fall between anchor points), width
and height = 2 x stride x softplus.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

NC = 6
STRIDES = (8, 16, 32)


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k=3, s=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Res(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = ConvBN(c, c // 2, 1)
        self.b = ConvBN(c // 2, c, 3)

    def forward(self, x):
        return x + self.b(self.a(x))


class StreetNet(nn.Module):
    def __init__(self, nc=NC, in_hw=(224, 384)):
        super().__init__()
        self.nc = nc
        self.in_hw = in_hw
        self.stem = nn.Sequential(ConvBN(3, 16, 3, 2), ConvBN(16, 24, 3, 2))  # /4
        self.s3 = nn.Sequential(ConvBN(24, 48, 3, 2), Res(48))  # /8
        self.s4 = nn.Sequential(ConvBN(48, 80, 3, 2), Res(80), Res(80))  # /16
        self.s5 = nn.Sequential(ConvBN(80, 128, 3, 2), Res(128))  # /32
        self.lat5 = ConvBN(128, 64, 1)
        self.lat4 = ConvBN(80, 64, 1)
        self.lat3 = ConvBN(48, 32, 1)
        self.up4 = ConvBN(64, 32, 1)
        self.n4 = ConvBN(64, 64, 3)
        self.n3 = ConvBN(32, 32, 3)
        self.h3 = nn.Sequential(ConvBN(32, 32, 3), nn.Conv2d(32, 4 + nc, 1))
        self.h4 = nn.Sequential(ConvBN(64, 64, 3), nn.Conv2d(64, 4 + nc, 1))
        self.h5 = nn.Sequential(ConvBN(64, 64, 3), nn.Conv2d(64, 4 + nc, 1))
        for h in (self.h3, self.h4, self.h5):
            nn.init.constant_(h[1].bias[4:], -4.6)  # prior 0.01
            nn.init.constant_(h[1].bias[:2], 0.0)
            nn.init.constant_(h[1].bias[2:4], 0.5)
        self._grid = {}

    def features(self, x):
        x = self.stem(x)
        c3 = self.s3(x)
        c4 = self.s4(c3)
        c5 = self.s5(c4)
        p5 = self.lat5(c5)
        p4 = self.n4(self.lat4(c4) + F.interpolate(p5, scale_factor=2.0, mode="nearest"))
        p3 = self.n3(self.lat3(c3) + F.interpolate(self.up4(p4), scale_factor=2.0, mode="nearest"))
        return [self.h3(p3), self.h4(p4), self.h5(p5)]

    def grid(self, shapes, device):
        key = tuple(shapes)
        if key not in self._grid:
            pts, strides = [], []
            for (h, w), s in zip(shapes, STRIDES):
                yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                        indexing="ij")
                pts.append(torch.stack([(xx.reshape(-1) + 0.5) * s, (yy.reshape(-1) + 0.5) * s], 1))
                strides.append(torch.full((h * w,), float(s)))
            self._grid[key] = (torch.cat(pts).to(device), torch.cat(strides).to(device))
        return self._grid[key]

    def raw(self, x):
        """Training outputs: anchor points [A,2], strides [A], boxes [B,A,4] (cx, cy, w, h in
        pixels), logits [B,A,nc]."""
        outs = self.features(x)
        shapes = [o.shape[-2:] for o in outs]
        pts, strides = self.grid([(int(h), int(w)) for h, w in shapes], x.device)
        flat = torch.cat([o.flatten(2) for o in outs], 2).permute(0, 2, 1)  # B, A, 4+nc
        s = strides[None, :, None]
        ctr = pts[None] + flat[..., :2] * s
        wh = F.softplus(flat[..., 2:4]) * 2.0 * s
        return pts, strides, torch.cat([ctr, wh], -1), flat[..., 4:]

    def forward(self, x):
        """Export/inference: [B, 4 + nc, A] with cx, cy, w, h in input pixels and sigmoid scores."""
        outs = self.features(x)
        rows = []
        for o, s in zip(outs, STRIDES):
            b, c, h, w = o.shape
            ys = (torch.arange(h, dtype=torch.float32) + 0.5) * s
            xs = (torch.arange(w, dtype=torch.float32) + 0.5) * s
            cx = xs.view(1, 1, w) + o[:, 0] * s
            cy = ys.view(1, h, 1) + o[:, 1] * s
            bw = F.softplus(o[:, 2]) * (2.0 * s)
            bh = F.softplus(o[:, 3]) * (2.0 * s)
            box = torch.stack([cx, cy, bw, bh], 1)
            rows.append(torch.cat([box, torch.sigmoid(o[:, 4:])], 1).flatten(2))
        return torch.cat(rows, 2)


def n_anchors(in_hw=(224, 384)):
    return sum((in_hw[0] // s) * (in_hw[1] // s) for s in STRIDES)
