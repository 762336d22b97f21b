"""Deterministic synthetic street scenes for the `street` detector.

A scene is a pinhole camera above a flat ground plane (4-10 m high, looking 14-34 degrees down)
and a street laid out on that plane: a road with lane markings and sometimes a crosswalk,
curbs, sidewalks, and beyond them lawns / yards / parking on each side, with buildings and sky
past the far limit. The ground is shaded per pixel by back-projecting every pixel onto the
plane, so manhole covers, open manholes, puddles and shadows are true perspective ellipses.
Upright things (cars, bins, people, dump items, fences, benches, trees, lamp posts) are
projected 3-D boxes and billboards, drawn far to near.

Labelled classes (in model order):
    manhole_open, manhole_closed, dump, bin, car, person
Unlabelled on purpose (hard negatives / clutter): puddles (some manhole-sized and round),
shadows, dark repair patches, storm-drain grates, benches, bollards, trees, lamp posts.

Everything is drawn from a numpy Generator seeded by the caller: the same seed gives the same
picture and labels, byte for byte, with the same numpy/OpenCV versions.

`make_scene(rng)` builds a static scene description; `render(scene, rng)` draws one frame of it
(frame-level effects such as rain, noise and JPEG use `rng`). Video clips (make_clips.py) edit
the scene's object list between frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

CLASSES = ["manhole_open", "manhole_closed", "dump", "bin", "car", "person"]
CLS = {n: i for i, n in enumerate(CLASSES)}
W, H = 640, 360
MIN_BOX_W, MIN_BOX_H = 6.0, 5.0  # source pixels; smaller objects are not placed


# ----------------------------------------------------------------------------- camera
@dataclass
class Camera:
    height: float
    pitch: float
    f: float
    cx: float
    cy: float
    yaw: float
    roll: float

    def _to_cam(self, X, Y, Z):
        cy_, sy_ = math.cos(self.yaw), math.sin(self.yaw)
        x = cy_ * X - sy_ * Z
        z = sy_ * X + cy_ * Z
        ct, st = math.cos(self.pitch), math.sin(self.pitch)
        yc = (self.height - Y) * ct - z * st
        zc = (self.height - Y) * st + z * ct
        return x, yc, zc

    def project(self, X, Y, Z):
        """World (X right, Y up, Z forward) -> image (u, v) and camera depth."""
        X, Y, Z = (np.asarray(a, dtype=np.float64) for a in (X, Y, Z))
        x, yc, zc = self._to_cam(X, Y, Z)
        zs = np.maximum(zc, 1e-3)
        u0 = self.f * x / zs
        v0 = self.f * yc / zs
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        u = self.cx + cr * u0 - sr * v0
        v = self.cy + sr * u0 + cr * v0
        return u, v, zc

    def backproject(self, u, v):
        """Image points -> ground points (X, Z) and depth; depth <= 0 where the ray misses."""
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        du, dv = u - self.cx, v - self.cy
        u0 = cr * du + sr * dv
        v0 = -sr * du + cr * dv
        x, y = u0 / self.f, v0 / self.f
        ct, st = math.cos(self.pitch), math.sin(self.pitch)
        denom = y * ct + st  # downward component of the ray
        t = np.where(denom > 1e-6, self.height / np.maximum(denom, 1e-6), -1.0)
        xw = t * x
        zw = t * (-y * st + ct)
        cy_, sy_ = math.cos(self.yaw), math.sin(self.yaw)
        X = cy_ * xw + sy_ * zw
        Z = -sy_ * xw + cy_ * zw
        return X, Z, t  # t = camera depth along the optical axis


def random_camera(rng) -> Camera:
    return Camera(
        height=rng.uniform(4.0, 10.0),
        pitch=math.radians(rng.uniform(14, 34)),
        f=rng.uniform(430, 680),
        cx=W / 2 + rng.uniform(-15, 15),
        cy=H / 2 + rng.uniform(-10, 10),
        yaw=math.radians(rng.uniform(-30, 30)),
        roll=math.radians(rng.uniform(-3, 3)),
    )


# ----------------------------------------------------------------------------- objects
@dataclass
class Obj:
    kind: str  # manhole_open, manhole_closed, dump, bin, car, person, puddle, shadow, patch,
    # grate, bench, bollard, tree, lamp, fence
    X: float
    Z: float
    p: dict = field(default_factory=dict)
    visible: bool = True


@dataclass
class Scene:
    cam: Camera
    layout: dict
    light: dict
    weather: dict
    post: dict
    objects: list
    seed: int
    cache: dict = field(default_factory=dict)


def street_to_world(lay, s, t):
    c, sn = math.cos(lay["phi"]), math.sin(lay["phi"])
    return lay["X0"] + s * c - t * sn, lay["Z0"] + s * sn + t * c


def world_to_street(lay, X, Z):
    c, sn = math.cos(lay["phi"]), math.sin(lay["phi"])
    dx, dz = X - lay["X0"], Z - lay["Z0"]
    return dx * c + dz * sn, -dx * sn + dz * c


def zone_of(lay, t):
    a = abs(t)
    if a < lay["road_w"]:
        return "road"
    if a < lay["road_w"] + 0.2:
        return "curb"
    if a < lay["road_w"] + 0.2 + lay["walk_w"]:
        return "walk"
    return lay["side_r"] if t > 0 else lay["side_l"]


# ----------------------------------------------------------------------------- scene
def make_scene(rng, seed: int = 0, time_of_day: str | None = None, weather: str | None = None,
               populate: bool = True) -> Scene:
    cam = random_camera(rng)
    # the street: direction in the ground plane, passing in front of the camera
    orient = rng.choice(["along", "across", "diag"], p=[0.35, 0.4, 0.25])
    phi = {"along": math.pi / 2 + rng.uniform(-0.25, 0.25),
           "across": rng.uniform(-0.2, 0.2),
           "diag": rng.choice([-1, 1]) * rng.uniform(0.5, 1.0)}[orient]
    # street centre somewhere ahead
    X0, Z0 = 0.0, 0.0
    u0, v0 = rng.uniform(160, 480), rng.uniform(200, 320)
    Xc, Zc, d = cam.backproject(np.array(u0), np.array(v0))
    if d > 0:
        X0, Z0 = float(Xc), float(Zc)
    lay = dict(
        phi=float(phi), X0=X0, Z0=Z0,
        road_w=float(rng.uniform(3.0, 8.0)),
        walk_w=float(rng.uniform(1.8, 4.5)),
        side_l=str(rng.choice(["lawn", "yard", "lawn", "dirt", "parking"])),
        side_r=str(rng.choice(["lawn", "yard", "parking", "dirt", "lawn"])),
        asphalt=float(rng.uniform(60, 115)),
        asphalt_tint=rng.uniform(-6, 6, 3).tolist(),
        walk_col=(rng.uniform(110, 175, 1) + rng.uniform(-12, 12, 3)).tolist(),
        tile=float(rng.choice([0.0, 0.3, 0.5])),
        lane_dash=float(rng.uniform(2, 5)), lane_col=str(rng.choice(["white", "yellow", "none"])),
        crosswalk=float(rng.uniform(-15, 15)) if rng.random() < 0.4 else None,
        lawn_col=[rng.uniform(60, 110), rng.uniform(95, 150), rng.uniform(40, 80)],
        dirt_col=[rng.uniform(105, 150), rng.uniform(90, 125), rng.uniform(70, 100)],
        max_dist=float(rng.uniform(45, 90)),
        bld_seed=int(rng.integers(1 << 30)),
        tex_seed=int(rng.integers(1 << 30)),
        wear=float(rng.uniform(0.05, 0.3)),
    )
    tod = time_of_day or str(rng.choice(["day", "day", "day", "overcast", "dusk", "night", "night"]))
    light = dict(tod=tod)
    if tod == "day":
        light.update(gain=rng.uniform(0.9, 1.25), tint=[1.0, 1.0, 1.0], sun=float(rng.uniform(0, 2 * math.pi)),
                     shadow_len=float(rng.uniform(0.3, 1.5)))
    elif tod == "overcast":
        light.update(gain=rng.uniform(0.7, 0.95), tint=[0.97, 1.0, 1.04], sun=0.0, shadow_len=0.0)
    elif tod == "dusk":
        light.update(gain=rng.uniform(0.4, 0.65), tint=[1.12, 0.95, 0.8], sun=float(rng.uniform(0, 2 * math.pi)),
                     shadow_len=float(rng.uniform(1.0, 3.0)))
    else:
        light.update(gain=rng.uniform(0.12, 0.28), tint=[0.85, 0.9, 1.15], sun=0.0, shadow_len=0.0)
    light["lamps"] = []
    wx = weather or str(rng.choice(["clear", "clear", "clear", "rain", "fog", "snow", "snow"]))
    wth = dict(kind=wx, amount=float(rng.uniform(0.3, 1.0)))
    if wx == "snow":
        wth["ground_snow"] = float(rng.uniform(0.2, 0.9))
    post = dict(blur=float(rng.choice([0, 0.4, 0.7, 1.0, 1.4])), noise=float(rng.uniform(1, 6)),
                jpeg=int(rng.integers(30, 92)), motion=float(rng.random() < 0.15))
    scene = Scene(cam=cam, layout=lay, light=light, weather=wth, post=post, objects=[], seed=seed)
    if tod in ("night", "dusk"):
        # street lamps along one or both sidewalks
        side = rng.choice([-1, 1])
        spacing = rng.uniform(12, 25)
        for s in np.arange(-80, 80, spacing) + rng.uniform(0, spacing):
            for sd in ([side] if rng.random() < 0.6 else [-1, 1]):
                t = sd * (lay["road_w"] + 0.5)
                X, Z = street_to_world(lay, s, t)
                if _depth(cam, X, Z) > 1.5:
                    light["lamps"].append((float(X), float(Z), float(rng.uniform(0.6, 1.3))))
                    scene.objects.append(Obj("lamp", float(X), float(Z), dict(h=float(rng.uniform(6, 9)))))
    if populate:
        populate_scene(scene, rng)
    return scene


def _depth(cam, X, Z, Y=0.0):
    return float(cam.project(X, Y, Z)[2])


def sample_ground(scene, rng, zones, tries=40, margin=10, max_depth=None):
    """A random visible ground point (street s, t, world X, Z) in one of `zones`."""
    cam, lay = scene.cam, scene.layout
    for _ in range(tries):
        u = rng.uniform(margin, W - margin)
        v = rng.uniform(H * 0.3, H - margin)
        X, Z, d = cam.backproject(np.array(u), np.array(v))
        if d <= 1.5 or d > (max_depth or lay["max_dist"] * 0.8):
            continue
        s, t = world_to_street(lay, float(X), float(Z))
        if zone_of(lay, t) in zones:
            return float(s), float(t), float(X), float(Z)
    return None


def ground_box(cam, X, Z, r):
    a = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    u, v, d = cam.project(X + r * np.cos(a), 0 * a, Z + r * np.sin(a))
    if (d <= 0.5).any():
        return None
    return [float(u.min()), float(v.min()), float(u.max()), float(v.max())]


def box_ok(b, min_w=MIN_BOX_W, min_h=MIN_BOX_H, inside=0.7):
    if b is None:
        return False
    x1, y1, x2, y2 = b
    w, h = x2 - x1, y2 - y1
    if w < min_w or h < min_h:
        return False
    cw = max(0.0, min(x2, W) - max(x1, 0)) * max(0.0, min(y2, H) - max(y1, 0))
    return cw >= inside * w * h


def populate_scene(scene, rng):
    lay, cam = scene.layout, scene.cam
    objs = scene.objects
    snow = scene.weather.get("ground_snow", 0.0)

    def add_manhole(kind, zones=("road", "walk", "yard", "lawn", "parking", "dirt")):
        for _ in range(10):
            pt = sample_ground(scene, rng, zones, max_depth=28)
            if pt is None:
                return None
            s, t, X, Z = pt
            r = float(rng.uniform(0.3, 0.42))
            b = ground_box(cam, X, Z, r + 0.06)
            if box_ok(b, 9, 5, 0.95):
                o = Obj(kind, X, Z, dict(r=r, pattern=int(rng.integers(0, 5)),
                                         col=float(rng.uniform(55, 140)), rust=float(rng.random() < 0.3),
                                         contrast=float(rng.uniform(0.4, 1.0)),
                                         offset=float(rng.choice([-1, 1]) * rng.uniform(15, 45)),
                                         frame=float(rng.random() < 0.3),
                                         depth_shade=float(rng.uniform(0.0, 0.25)),
                                         rim=float(rng.uniform(90, 175)),
                                         snow=float(snow * rng.random()),
                                         fence=(kind == "manhole_open" and rng.random() < 0.35),
                                         fence_r=float(rng.uniform(0.8, 1.2)),
                                         fence_style=int(rng.integers(0, 3)),
                                         water=float(rng.random() < 0.2)))
                objs.append(o)
                return o
        return None

    # manholes: closed ones are common, open ones in half of the scenes
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
        add_manhole("manhole_closed")
    for _ in range(rng.choice([0, 0, 1, 1, 1, 2])):
        add_manhole("manhole_open")
    # hard negatives on the ground
    for _ in range(rng.integers(0, 5)):
        pt = sample_ground(scene, rng, ("road", "walk", "yard", "parking", "dirt", "lawn"), max_depth=35)
        if pt:
            small = rng.random() < 0.45  # manhole-sized, roundish: the hard case
            objs.append(Obj("puddle", pt[2], pt[3], dict(
                r=float(rng.uniform(0.25, 0.5) if small else rng.uniform(0.4, 2.0)),
                elong=float(rng.uniform(1.0, 1.3) if small else rng.uniform(1.0, 2.5)),
                ang=float(rng.uniform(0, np.pi)), dark=float(rng.uniform(0.25, 0.55)),
                wob=rng.uniform(-0.15, 0.15, 4).tolist(), ph=rng.uniform(0, 6.3, 4).tolist())))
    for _ in range(rng.integers(0, 4)):
        pt = sample_ground(scene, rng, ("road", "walk", "yard", "parking", "dirt", "lawn"), max_depth=35)
        if pt:
            objs.append(Obj("shadow", pt[2], pt[3], dict(
                r=float(rng.uniform(0.3, 1.6)), elong=float(rng.uniform(1.0, 2.5)),
                ang=float(rng.uniform(0, np.pi)), dark=float(rng.uniform(0.2, 0.5)),
                wob=rng.uniform(-0.2, 0.2, 4).tolist(), ph=rng.uniform(0, 6.3, 4).tolist())))
    for _ in range(rng.integers(0, 3)):
        pt = sample_ground(scene, rng, ("road", "walk", "parking"), max_depth=35)
        if pt:
            k = "grate" if rng.random() < 0.5 else "patch"
            objs.append(Obj(k, pt[2], pt[3], dict(w=float(rng.uniform(0.4, 0.9) if k == "grate" else rng.uniform(0.5, 3)),
                                                  l=float(rng.uniform(0.3, 0.6) if k == "grate" else rng.uniform(0.5, 3)),
                                                  ang=float(rng.uniform(0, np.pi)),
                                                  dark=float(rng.uniform(0.4, 0.8)))))

    # bins, often as a collection point, with or without a dump beside them
    bin_pts = []
    if rng.random() < 0.6:
        pt = sample_ground(scene, rng, ("walk", "yard", "parking", "dirt", "lawn"), max_depth=40)
        if pt:
            s, t, _, _ = pt
            n = int(rng.integers(1, 5))
            col = rng.choice(["green", "blue", "grey", "yellow", "orange", "brown"])
            ang = lay["phi"] + rng.uniform(-0.2, 0.2)
            for i in range(n):
                si = s + (i - n / 2) * rng.uniform(1.1, 1.5)
                X, Z = street_to_world(lay, si, t)
                if _depth(cam, X, Z) > 2:
                    objs.append(_bin(rng, X, Z, ang, col if rng.random() < 0.8 else None))
                    bin_pts.append((si, t))
    for _ in range(rng.choice([0, 0, 1, 2])):  # single urns/bins elsewhere
        pt = sample_ground(scene, rng, ("walk", "yard", "lawn", "parking"), max_depth=35)
        if pt:
            objs.append(_bin(rng, pt[2], pt[3], rng.uniform(0, np.pi), None, small=rng.random() < 0.5))
    n_dumps = rng.choice([0, 0, 1, 1, 2])
    for i in range(n_dumps):
        if bin_pts and rng.random() < 0.5:
            s, t = bin_pts[int(rng.integers(len(bin_pts)))]
            s += rng.choice([-1, 1]) * rng.uniform(1.5, 3.0)
            t += rng.uniform(-0.8, 0.8)
            X, Z = street_to_world(lay, s, t)
        else:
            pt = sample_ground(scene, rng, ("walk", "yard", "lawn", "dirt", "parking"), max_depth=40)
            if not pt:
                continue
            X, Z = pt[2], pt[3]
        if _depth(cam, X, Z) > 2:
            objs.append(_dump(rng, X, Z))

    # cars: driving / parked along the curb, some on the sidewalk, lawn or crosswalk
    for _ in range(rng.choice([0, 1, 2, 3, 4, 5, 6])):
        where = rng.choice(["lane", "curb", "walk", "lawn", "parking", "cross"], p=[0.35, 0.25, 0.12, 0.08, 0.12, 0.08])
        pt = sample_ground(scene, rng, ("road", "curb", "walk", "lawn", "yard", "parking", "dirt"), max_depth=60)
        if not pt:
            continue
        s, t, X, Z = pt
        sd = 1 if t > 0 else -1
        ang = lay["phi"] + (0 if rng.random() < 0.5 else math.pi) + rng.uniform(-0.08, 0.08)
        if where == "lane":
            t = sd * rng.uniform(0.3, 0.8) * lay["road_w"]
        elif where == "curb":
            t = sd * (lay["road_w"] - 1.1)
        elif where == "walk":
            t = sd * (lay["road_w"] + 0.2 + rng.uniform(0.6, 1.2))
            ang += rng.uniform(-0.2, 0.2)
        elif where == "lawn":
            t = sd * (lay["road_w"] + lay["walk_w"] + rng.uniform(1.5, 5))
            ang += rng.uniform(-0.6, 0.6)
        elif where == "parking":
            t = sd * (lay["road_w"] + lay["walk_w"] + rng.uniform(3, 8))
            ang = lay["phi"] + math.pi / 2 + rng.uniform(-0.1, 0.1)
        else:
            if lay["crosswalk"] is not None:
                s = lay["crosswalk"] + 2
            t = sd * rng.uniform(0.3, 0.8) * lay["road_w"]
        X, Z = street_to_world(lay, s, t)
        if _depth(cam, X, Z) > 5.5:
            objs.append(_car(rng, X, Z, ang))

    # people on sidewalks, crosswalks, yards
    for _ in range(rng.choice([0, 0, 1, 2, 3, 4, 6, 8])):
        pt = sample_ground(scene, rng, ("walk", "yard", "lawn", "parking", "road", "dirt"), max_depth=45)
        if pt:
            objs.append(_person(rng, pt[2], pt[3]))

    # clutter
    for _ in range(rng.integers(0, 4)):
        k = rng.choice(["bench", "bollard", "tree", "lamp"])
        zones = ("walk", "lawn", "yard") if k != "bollard" else ("walk", "curb")
        pt = sample_ground(scene, rng, zones, max_depth=50)
        if pt:
            objs.append(Obj(k, pt[2], pt[3], dict(h=float(rng.uniform(3, 8)) if k in ("tree", "lamp") else 0.0,
                                                  ang=float(lay["phi"] + rng.uniform(-0.2, 0.2)),
                                                  col=rng.uniform(40, 140, 3).tolist(),
                                                  crown=float(rng.uniform(1.0, 2.5)))))


PALETTE_BIN = {"green": (40, 110, 50), "blue": (35, 70, 140), "grey": (110, 112, 115),
               "yellow": (200, 170, 40), "orange": (210, 110, 30), "brown": (100, 70, 45)}


def _bin(rng, X, Z, ang, col, small=False):
    c = PALETTE_BIN[col or rng.choice(list(PALETTE_BIN))]
    c = (np.array(c) * rng.uniform(0.75, 1.15)).clip(0, 255).tolist()
    if small:
        L, Wd, Hh = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.7, 1.0)
    else:
        L, Wd, Hh = rng.uniform(1.0, 1.5), rng.uniform(0.8, 1.1), rng.uniform(1.0, 1.35)
    return Obj("bin", float(X), float(Z), dict(L=float(L), Wd=float(Wd), Hh=float(Hh), ang=float(ang), col=c,
                                               lid=float(rng.uniform(0.5, 0.9)), bags=float(rng.random() < 0.2)))


def _dump(rng, X, Z):
    R = float(rng.uniform(0.6, 2.2))
    n = int(rng.integers(6, 28))
    items = []
    for _ in range(n):
        rr = R * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * np.pi)
        kind = rng.choice(["bag", "bag", "bag", "box", "debris", "tyre"])
        if kind == "bag":
            col = [rng.choice([25, 30, 200, 60, 40]), 0, 0]
            base = rng.choice(["black", "black", "blue", "white", "green", "grey"])
            col = {"black": (28, 28, 32), "blue": (40, 60, 130), "white": (200, 200, 195),
                   "green": (50, 90, 50), "grey": (110, 110, 110)}[base]
        elif kind == "box":
            col = (rng.uniform(130, 185), rng.uniform(95, 135), rng.uniform(55, 85))
        elif kind == "tyre":
            col = (25, 25, 25)
        else:
            col = tuple(rng.uniform(40, 200, 3))
        size = rng.uniform(0.25, 0.6) if kind != "box" else rng.uniform(0.3, 0.7)
        items.append(dict(kind=str(kind), dx=float(rr * math.cos(a)), dz=float(rr * math.sin(a)),
                          y=float(max(0.0, (1 - rr / R)) * rng.uniform(0, 0.5) * R),
                          size=float(size), col=[float(x) for x in col], ang=float(rng.uniform(0, np.pi))))
    return Obj("dump", float(X), float(Z), dict(R=R, items=items,
                                                base_col=(rng.uniform(70, 120), rng.uniform(60, 100), rng.uniform(45, 80))))


CAR_COLS = [(200, 200, 205), (30, 30, 35), (120, 122, 128), (160, 30, 30), (30, 50, 120), (230, 230, 230),
            (90, 90, 60), (150, 150, 160), (200, 180, 140), (40, 80, 50)]


def _car(rng, X, Z, ang):
    col = np.array(CAR_COLS[int(rng.integers(len(CAR_COLS)))]) * rng.uniform(0.8, 1.1)
    kind = rng.choice(["sedan", "sedan", "suv", "van", "hatch"])
    L = {"sedan": 4.5, "suv": 4.7, "van": 5.0, "hatch": 3.9}[kind] * rng.uniform(0.93, 1.07)
    Wd = rng.uniform(1.7, 1.95)
    h1 = rng.uniform(0.75, 0.95)
    h2 = {"sedan": 1.45, "suv": 1.75, "van": 2.1, "hatch": 1.5}[kind] * rng.uniform(0.95, 1.05)
    cab = {"sedan": 0.5, "suv": 0.65, "van": 0.8, "hatch": 0.6}[kind]
    return Obj("car", float(X), float(Z), dict(L=float(L), Wd=float(Wd), h1=float(h1), h2=float(h2), cab=float(cab),
                                               cab_off=float(rng.uniform(-0.15, 0.05) * L), ang=float(ang),
                                               col=col.clip(0, 255).tolist(), lights=bool(rng.random() < 0.7)))


def _person(rng, X, Z):
    return Obj("person", float(X), float(Z), dict(
        h=float(rng.uniform(1.2, 1.95)), w=float(rng.uniform(0.38, 0.55)),
        top=rng.uniform(20, 220, 3).tolist(), bottom=rng.uniform(15, 120, 3).tolist(),
        skin=[float(rng.uniform(150, 225)), float(rng.uniform(110, 180)), float(rng.uniform(90, 150))],
        hat=bool(rng.random() < 0.4), hatcol=rng.uniform(10, 200, 3).tolist(),
        stride=float(rng.uniform(0, 0.35)), coat=bool(rng.random() < 0.5), bag=bool(rng.random() < 0.25),
        phase=float(rng.uniform(0, 6.3))))


# ----------------------------------------------------------------------------- rendering helpers
def _noise_tile(rng, n=256, blur=0.0):
    t = rng.standard_normal((n, n)).astype(np.float32)
    if blur:
        m = int(4 * blur) + 2
        t = cv2.GaussianBlur(np.pad(t, m, mode="wrap"), (0, 0), blur)[m:-m, m:-m]
        t /= t.std() + 1e-6
    return t


def _ground_cache(scene):
    c = scene.cache
    if "X" in c:
        return c
    cam, lay = scene.cam, scene.layout
    vv, uu = np.mgrid[0:H, 0:W].astype(np.float64)
    X, Z, d = cam.backproject(uu + 0.5, vv + 0.5)
    ground = (d > 0) & (d < lay["max_dist"])
    c["X"], c["Z"], c["d"], c["ground"] = X, Z, d, ground
    s, t = world_to_street(lay, X, Z)
    c["s"], c["t"] = s, t
    trng = np.random.default_rng(lay["tex_seed"])
    c["fine"] = _noise_tile(trng, 256, 0.7)
    c["coarse"] = _noise_tile(trng, 256, 6.0)
    c["base"] = _render_ground(scene)
    return c


def _sample_tile(tile, a, b):
    n = tile.shape[0]
    ia = np.floor(a).astype(np.int64) % n
    ib = np.floor(b).astype(np.int64) % n
    return tile[ia, ib]


def _render_ground(scene):
    c, lay, cam = scene.cache, scene.layout, scene.cam
    s, t, d, ground = c["s"], c["t"], c["d"], c["ground"]
    img = np.zeros((H, W, 3), np.float32)
    # background: sky and buildings
    brng = np.random.default_rng(lay["bld_seed"])
    top = np.array([brng.uniform(120, 190), brng.uniform(150, 200), brng.uniform(190, 240)], np.float32)
    bot = np.array([brng.uniform(180, 225)] * 3, np.float32)
    g = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
    img[:] = top * (1 - g) + bot * g
    # horizon-ish line: where the ground reaches max_dist
    rows = np.where(ground.any(axis=1))[0]
    v_far = int(rows.min()) if len(rows) else H
    x = -20
    bld = []
    while x < W + 20:
        bw = int(brng.uniform(40, 160))
        bh = int(brng.uniform(20, 140) * (cam.f / 550))
        col = brng.uniform(90, 200, 3)
        bld.append((x, bw, bh, col, brng.uniform(0.2, 0.6), brng.random()))
        x += bw + int(brng.uniform(-10, 25))
    scene.cache["windows"] = []
    for x, bw, bh, col, wdark, lit in bld:
        y2 = v_far + 6
        y1 = y2 - bh
        cv2.rectangle(img, (int(x), int(y1)), (int(x + bw), int(y2)), [float(v) for v in col], -1)
        ws = max(4, int(bh / 8))
        for wy in range(int(y1) + 4, int(y2) - ws, ws + 3):
            for wx in range(int(x) + 4, int(x + bw) - ws, ws + 3):
                wc = col * wdark
                cv2.rectangle(img, (wx, wy), (wx + ws - 2, wy + ws - 2), [float(v) for v in wc], -1)
                if brng.random() < 0.3 * lit:
                    scene.cache["windows"].append((wx, wy, ws - 2))
    # ground zones
    at = np.abs(t)
    rw, ww = lay["road_w"], lay["walk_w"]
    fine = _sample_tile(c["fine"], s * 12, t * 12)
    coarse = _sample_tile(c["coarse"], s * 1.5, t * 1.5)
    # far away the fine texture aliases: fade it with distance
    fade = np.clip(1.5 - d / 25.0, 0.15, 1.0)
    gcol = np.zeros((H, W, 3), np.float32)
    asph = lay["asphalt"] + np.array(lay["asphalt_tint"], np.float32)
    road = at < rw
    gcol[road] = asph
    # lane markings
    if lay["lane_col"] != "none":
        lc = np.array([235, 235, 230] if lay["lane_col"] == "white" else [220, 190, 60], np.float32)
        mark = road & (at < 0.07) & ((s % (2 * lay["lane_dash"])) < lay["lane_dash"])
        gcol[mark] = lc * (1 - lay["wear"])  + asph * lay["wear"]
        edge = road & (at > rw - 0.25) & (at < rw - 0.15)
        gcol[edge] = lc * 0.8
    if lay["crosswalk"] is not None:
        cw = road & (s > lay["crosswalk"]) & (s < lay["crosswalk"] + 4) & ((t % 1.0) < 0.5)
        gcol[cw] = np.array([225, 225, 220], np.float32) * (1 - lay["wear"]) + asph * lay["wear"]
    curb = (at >= rw) & (at < rw + 0.2)
    gcol[curb] = np.array([175, 175, 170], np.float32)
    walk = (at >= rw + 0.2) & (at < rw + 0.2 + ww)
    wc = np.array(lay["walk_col"], np.float32)
    gcol[walk] = wc
    if lay["tile"] > 0:
        tl = lay["tile"]
        joint = walk & (((s % tl) < 0.025) | ((t % tl) < 0.025))
        gcol[joint] = wc * 0.8
    for side, name in ((t < 0, lay["side_l"]), (t >= 0, lay["side_r"])):
        m = side & (at >= rw + 0.2 + ww)
        if name == "lawn":
            gcol[m] = np.array(lay["lawn_col"], np.float32)
        elif name == "dirt":
            gcol[m] = np.array(lay["dirt_col"], np.float32)
        elif name == "yard":
            gcol[m] = asph * 1.1 + 10
        else:  # parking: asphalt with bay lines
            gcol[m] = asph * 0.95
            bay = m & ((s % 2.6) < 0.1) & (at < rw + ww + 5.5)
            gcol[bay] = np.array([210, 210, 205], np.float32)
    grass = np.zeros_like(ground)
    for side, name in ((t < 0, lay["side_l"]), (t >= 0, lay["side_r"])):
        if name == "lawn":
            grass |= side & (at >= rw + 0.2 + ww)
    tex = 1.0 + (0.10 + 0.12 * grass) * fine * fade + 0.10 * coarse
    gcol *= tex[..., None]
    snow = scene.weather.get("ground_snow", 0.0)
    if snow > 0:
        # snow lies on lawns and along the edges, patchy on roads and walks
        patch = _sample_tile(c["coarse"], s * 0.8 + 50, t * 0.8 + 50)
        cover = np.clip((patch + 1.5 * snow - 0.8 + 1.2 * grass + 0.8 * curb) * 1.5, 0, 1) * snow
        cover = np.where(road, cover * 0.6, cover)
        white = np.array([225, 228, 235], np.float32) * (0.92 + 0.05 * fine[..., None] * fade[..., None])
        gcol = gcol * (1 - cover[..., None]) + white * cover[..., None]
    img[ground] = gcol[ground]
    return img


class Painter:
    """Draws onto the float image and an object-id map (for visibility checks)."""

    def __init__(self, img):
        self.img = img
        self.ids = np.zeros((H, W), np.int32)
        self.cur = 0

    def poly(self, pts, col):
        p = np.round(np.asarray(pts, np.float64) * 4).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(self.img, [p], [float(x) for x in col], lineType=cv2.LINE_AA, shift=2)
        cv2.fillPoly(self.ids, [p], self.cur, shift=2)

    def ellipse(self, c, axes, ang, col):
        if axes[0] < 0.3 or axes[1] < 0.3:
            return
        cc = (int(round(c[0] * 4)), int(round(c[1] * 4)))
        ax = (max(1, int(round(axes[0] * 4))), max(1, int(round(axes[1] * 4))))
        cv2.ellipse(self.img, cc, ax, float(ang), 0, 360, [float(x) for x in col], -1, cv2.LINE_AA, 2)
        cv2.ellipse(self.ids, cc, ax, float(ang), 0, 360, self.cur, -1, cv2.LINE_8, 2)

    def line(self, a, b, col, th):
        th = min(255, max(1, int(round(th))))
        pa = (int(round(a[0] * 4)), int(round(a[1] * 4)))
        pb = (int(round(b[0] * 4)), int(round(b[1] * 4)))
        cv2.line(self.img, pa, pb, [float(x) for x in col], th, cv2.LINE_AA, 2)
        cv2.line(self.ids, pa, pb, self.cur, th, cv2.LINE_8, 2)


def _shade(col, normal_xz, light):
    """Simple Lambert-ish face shading from the face normal (world X, Z) and a sun direction."""
    sun = light.get("sun", 0.0)
    lx, lz = math.cos(sun), math.sin(sun)
    k = 0.78 + 0.22 * (normal_xz[0] * lx + normal_xz[1] * lz)
    return [float(v) * k for v in col]


def _draw_cuboid(P, cam, light, cx, cz, y0, y1, L, Wd, ang, col, top_col=None, side_col=None):
    """An oriented box on the ground, back faces culled. Returns the projected corner bbox."""
    ca, sa = math.cos(ang), math.sin(ang)
    hx, hz = L / 2, Wd / 2
    base = [(-hx, -hz), (hx, -hz), (hx, hz), (-hx, hz)]
    pts = [(cx + a * ca - b * sa, cz + a * sa + b * ca) for a, b in base]
    xs = np.array([p[0] for p in pts] * 2)
    zs = np.array([p[1] for p in pts] * 2)
    ys = np.array([y0] * 4 + [y1] * 4)
    u, v, d = cam.project(xs, ys, zs)
    if (d < 0.5).any():
        return None
    cpos = cam.project  # noqa
    # camera position in world
    camX, camZ = 0.0, 0.0
    faces = []
    for i in range(4):
        j = (i + 1) % 4
        mx, mz = (pts[i][0] + pts[j][0]) / 2, (pts[i][1] + pts[j][1]) / 2
        nx, nz = mx - cx, mz - cz
        nn = math.hypot(nx, nz) + 1e-9
        nx, nz = nx / nn, nz / nn
        if nx * (camX - mx) + nz * (camZ - mz) > 0:
            faces.append(([i, j, j + 4, i + 4], (nx, nz)))
    for idx, n in faces:
        P.poly(np.stack([u[idx], v[idx]], 1), _shade(side_col or col, n, light))
    if y1 < cam.height:
        P.poly(np.stack([u[4:], v[4:]], 1), top_col or [c * 1.08 for c in col])
    return [float(u.min()), float(v.min()), float(u.max()), float(v.max())], u, v


def _ppm(cam, X, Z):
    u, v, d = cam.project(np.array([X, X]), np.array([0.0, 1.0]), np.array([Z, Z]))
    return float(v[0] - v[1]), float(u[0]), float(v[0])


def draw_object(P, scene, o, rng_frame):
    cam, light = scene.cam, scene.light
    p = o.p
    if _depth(cam, o.X, o.Z) < 1.0:  # at or behind the camera (moving objects in clips)
        return None
    if o.kind == "car":
        ca, sa = math.cos(p["ang"]), math.sin(p["ang"])
        col = p["col"]
        r1 = _draw_cuboid(P, cam, light, o.X, o.Z, 0.18, p["h1"], p["L"], p["Wd"], p["ang"], col)
        if r1 is None:
            return None
        # wheels: dark blobs at the four lower corners
        ppm, _, _ = _ppm(cam, o.X, o.Z)
        for a in (-0.32, 0.32):
            for b in (-0.5, 0.5):
                wx = o.X + a * p["L"] * ca - b * p["Wd"] * sa
                wz = o.Z + a * p["L"] * sa + b * p["Wd"] * ca
                u, v, d = cam.project(wx, 0.3, wz)
                P.ellipse((float(u), float(v)), (0.33 * ppm * 0.55, 0.33 * ppm), 0, (22, 22, 24))
        r1 = _draw_cuboid(P, cam, light, o.X, o.Z, 0.18, p["h1"], p["L"], p["Wd"], p["ang"], col)
        cx = o.X + p["cab_off"] * ca
        cz = o.Z + p["cab_off"] * sa
        glass = [40 + 0.15 * col[0], 48 + 0.15 * col[1], 58 + 0.15 * col[2]]
        r2 = _draw_cuboid(P, cam, light, cx, cz, p["h1"], p["h2"], p["L"] * p["cab"], p["Wd"] * 0.92, p["ang"],
                          col, top_col=[c * 1.05 for c in col], side_col=glass)
        boxes = [r1[0]] + ([r2[0]] if r2 else [])
        b = [min(x[0] for x in boxes), min(x[1] for x in boxes), max(x[2] for x in boxes), max(x[3] for x in boxes)]
        if light["tod"] in ("night", "dusk") and p["lights"]:
            # head and tail lights, drawn later as glows
            for a, c in ((0.5, (255, 250, 220)), (-0.5, (255, 40, 30))):
                for bb in (-0.35, 0.35):
                    lx = o.X + a * p["L"] * ca - bb * p["Wd"] * sa
                    lz = o.Z + a * p["L"] * sa + bb * p["Wd"] * ca
                    u, v, d = cam.project(lx, 0.65, lz)
                    # only when that end faces the camera
                    if (a * ca) * (0 - o.X) + (a * sa) * (0 - o.Z) > 0:
                        scene.cache.setdefault("glows", []).append((float(u), float(v), 0.25 * ppm, c))
        return b
    if o.kind == "bin":
        r = _draw_cuboid(P, cam, light, o.X, o.Z, 0.05, p["Hh"], p["L"], p["Wd"], p["ang"], p["col"],
                         top_col=[c * p["lid"] for c in p["col"]])
        if r is None:
            return None
        b = r[0]
        # lid edge and wheels
        ppm, u0, v0 = _ppm(cam, o.X, o.Z)
        if p["bags"]:
            u, v, d = cam.project(o.X, p["Hh"], o.Z)
            P.ellipse((float(u), float(v)), (0.35 * ppm, 0.25 * ppm), 0, (30, 30, 35))
            b = [b[0], min(b[1], float(v) - 0.25 * ppm), b[2], b[3]]
        return b
    if o.kind == "person":
        ppm, u0, v0 = _ppm(cam, o.X, o.Z)
        h, w = p["h"] * ppm, p["w"] * ppm
        ph = p["phase"] + scene.cache.get("t", 0.0) * 6.0
        st = p["stride"] * math.sin(ph) * w
        bot = p["bottom"]
        top = p["top"]
        leg_top = v0 - 0.47 * h
        lw = max(1.0, 0.17 * w * 2)
        P.line((u0 - 0.15 * w, leg_top), (u0 - 0.15 * w + st, v0), bot, lw)
        P.line((u0 + 0.15 * w, leg_top), (u0 + 0.15 * w - st, v0), bot, lw)
        torso_bot = v0 - (0.38 if p["coat"] else 0.45) * h
        torso_top = v0 - 0.82 * h
        P.poly([(u0 - 0.5 * w, torso_bot), (u0 + 0.5 * w, torso_bot), (u0 + 0.42 * w, torso_top),
                (u0 - 0.42 * w, torso_top)], top)
        aw = max(1.0, 0.2 * w)
        P.line((u0 - 0.45 * w, torso_top + 0.02 * h), (u0 - 0.55 * w - 0.5 * st, v0 - 0.5 * h), [c * 0.9 for c in top], aw)
        P.line((u0 + 0.45 * w, torso_top + 0.02 * h), (u0 + 0.55 * w + 0.5 * st, v0 - 0.5 * h), [c * 0.9 for c in top], aw)
        P.ellipse((u0, v0 - 0.9 * h), (0.2 * w * 1.0, 0.09 * h), 0, p["skin"])
        if p["hat"]:
            P.ellipse((u0, v0 - 0.95 * h), (0.22 * w, 0.05 * h), 0, p["hatcol"])
        if p["bag"]:
            P.poly([(u0 + 0.5 * w, v0 - 0.55 * h), (u0 + 0.85 * w, v0 - 0.55 * h), (u0 + 0.85 * w, v0 - 0.4 * h),
                    (u0 + 0.5 * w, v0 - 0.4 * h)], [c * 0.6 for c in bot])
        return [u0 - 0.6 * w - abs(st) * 0.5, v0 - h, u0 + 0.6 * w + abs(st) * 0.5, v0 + 0.5]
    if o.kind == "dump":
        ppm, u0, v0 = _ppm(cam, o.X, o.Z)
        R = p["R"]
        # dirty ground patch under the pile
        a = np.linspace(0, 2 * np.pi, 20, endpoint=False)
        u, v, d = cam.project(o.X + R * 1.1 * np.cos(a), 0 * a, o.Z + R * 1.1 * np.sin(a))
        P.poly(np.stack([u, v], 1), p["base_col"])
        bx = [float(u.min()), float(v.min()), float(u.max()), float(v.max())]
        items = sorted(p["items"], key=lambda it: -_depth(cam, o.X + it["dx"], o.Z + it["dz"]))
        for it in items:
            X, Z = o.X + it["dx"], o.Z + it["dz"]
            sz = it["size"]
            if it["kind"] == "box":
                r = _draw_cuboid(P, cam, light, X, Z, it["y"], it["y"] + sz * 0.8, sz, sz * 0.8, it["ang"], it["col"])
                if r:
                    bx = [min(bx[0], r[0][0]), min(bx[1], r[0][1]), max(bx[2], r[0][2]), max(bx[3], r[0][3])]
                continue
            u, v, d = cam.project(X, it["y"] + sz * 0.45, Z)
            q, _, _ = _ppm(cam, X, Z)
            ax = (sz * 0.6 * q, sz * 0.45 * q)
            col = it["col"]
            P.ellipse((float(u), float(v)), ax, math.degrees(it["ang"]) * 0.3, col)
            if it["kind"] == "bag":
                P.ellipse((float(u) - ax[0] * 0.3, float(v) - ax[1] * 0.35), (ax[0] * 0.35, ax[1] * 0.25), 0,
                          [min(255, c * 1.5 + 25) for c in col])
            elif it["kind"] == "tyre":
                P.ellipse((float(u), float(v)), (ax[0] * 0.45, ax[1] * 0.45), 0, p["base_col"])
            bx = [min(bx[0], u - ax[0]), min(bx[1], v - ax[1]), max(bx[2], u + ax[0]), max(bx[3], v + ax[1])]
        return [float(x) for x in bx]
    if o.kind in ("bench",):
        _draw_cuboid(P, cam, light, o.X, o.Z, 0.4, 0.5, 1.6, 0.45, p["ang"], (110, 80, 50))
        return None
    if o.kind == "bollard":
        _draw_cuboid(P, cam, light, o.X, o.Z, 0.0, 0.9, 0.15, 0.15, 0.0, (200, 200, 200))
        return None
    if o.kind in ("tree", "lamp"):
        ppm, u0, v0 = _ppm(cam, o.X, o.Z)
        u1, v1, _ = cam.project(o.X, p["h"], o.Z)
        if o.kind == "tree":
            P.line((u0, v0), (float(u1), float(v1)), (70, 55, 40), 0.25 * ppm)
            cr = p["crown"] * ppm
            light_dark = 0.4 if scene.weather.get("ground_snow", 0) > 0 else 1.0
            P.ellipse((float(u1), float(v1)), (cr, cr * 1.2), 0, [40 * light_dark + 40, 90 * light_dark + 30, 40])
        else:
            P.line((u0, v0), (float(u1), float(v1)), (60, 62, 66), max(1.0, 0.12 * ppm))
            if scene.light["tod"] in ("night", "dusk"):
                scene.cache.setdefault("glows", []).append((float(u1), float(v1), 0.4 * ppm, (255, 230, 170)))
        return None
    return None


def draw_ground_object(img, scene, o, rng):
    """Manholes, puddles, shadows, patches, grates: shaded per pixel in ground coordinates."""
    c, cam, p = scene.cache, scene.cam, o.p
    if o.kind in ("manhole_open", "manhole_closed"):
        R = p["r"] + 0.06 + (0.25 if p["frame"] else 0)
    elif o.kind in ("puddle", "shadow"):
        R = p["r"] * max(1.0, p["elong"]) * 1.3
    else:
        R = max(p["w"], p["l"]) * 0.8
    b = ground_box(cam, o.X, o.Z, R)
    if b is None:
        return None
    x1, y1 = max(0, int(b[0]) - 1), max(0, int(b[1]) - 1)
    x2, y2 = min(W, int(b[2]) + 2), min(H, int(b[3]) + 2)
    if x2 <= x1 or y2 <= y1:
        return None
    sl = (slice(y1, y2), slice(x1, x2))
    dx, dz = c["X"][sl] - o.X, c["Z"][sl] - o.Z
    g = c["ground"][sl]
    patch = img[sl]
    # per-pixel footprint in metres (for anti-aliasing edges)
    px = np.maximum(c["d"][sl] / cam.f, 1e-3) * 1.2
    if o.kind in ("manhole_open", "manhole_closed"):
        r = p["r"]
        d = np.hypot(dx, dz)
        rim_w = 0.06
        if p["frame"]:
            sq = np.maximum(np.abs(dx), np.abs(dz))
            fm = np.clip((r + 0.28 - sq) / px, 0, 1) * g
            fc = np.array([p["rim"] * 0.9] * 3, np.float32)
            patch[:] = patch * (1 - fm[..., None]) + fc * fm[..., None]
        rim = np.clip((r + rim_w - d) / px, 0, 1) * g
        rc = np.array([p["rim"], p["rim"] * 0.98, p["rim"] * 0.95], np.float32)
        if o.kind == "manhole_closed":
            rc = rc * 0.75
        patch[:] = patch * (1 - rim[..., None]) + rc * rim[..., None]
        if o.kind == "manhole_closed":  # the dark seam between frame and cover
            seam = np.clip((0.025 - np.abs(d - r)) / px + 0.5, 0, 1) * g * 0.7
            patch[:] = patch * (1 - seam[..., None]) + 25 * seam[..., None]
        inner = np.clip((r - d) / px, 0, 1) * g
        if o.kind == "manhole_closed":
            local = float(np.median(patch[g > 0])) if (g > 0).any() else p["col"]
            base = float(np.clip(local + p["offset"], 35, 200)) if p["contrast"] < 0.7 else p["col"]
            col = np.array([base * 1.05, base, base * 0.95] if not p["rust"] else [base * 1.25, base * 0.85, base * 0.6],
                           np.float32)
            k = 2 * np.pi
            pat = p["pattern"]
            if pat == 0:
                tex = np.cos(d * k / 0.07)
            elif pat == 1:
                tex = np.cos(np.arctan2(dz, dx) * 12)
            elif pat == 2:
                tex = np.sign(np.cos(dx * k / 0.08) * np.cos(dz * k / 0.08))
            elif pat == 3:
                tex = np.cos(dx * k / 0.06 + dz * k / 0.06) * np.cos(dx * k / 0.06 - dz * k / 0.06)
            else:
                tex = (np.cos(d * k / 0.12) > 0.7).astype(np.float32) * 2 - 1
            # the pattern fades out where a pixel covers more than the pattern period
            vis = np.clip(1.0 - px / 0.1, 0, 1)
            shade = 1 + 0.22 * p["contrast"] * tex * vis
            ring = np.abs(d - r * 0.75) < 0.02
            shade = np.where(ring, shade * 0.85, shade)
            cc = col[None, None, :] * shade[..., None]
            if p["snow"] > 0.3:
                cc = cc * (1 - 0.6 * p["snow"]) + 225 * 0.6 * p["snow"]
            patch[:] = patch * (1 - inner[..., None]) + cc * inner[..., None]
        else:
            # open: a dark shaft; the far wall catches a little light, the near side is black
            fwd = np.array([math.sin(cam.yaw), math.cos(cam.yaw)])  # ground direction away from the camera
            along = (dx * fwd[0] + dz * fwd[1]) / r
            dark = 12 + 22 * np.clip(along, 0, 1) ** 2 * (1 - p["depth_shade"])
            cc = np.stack([dark, dark * 0.97, dark * 0.93], -1)
            if p["water"]:
                cc = cc + 10 * (np.cos(d * 60) > 0.8)[..., None]
            patch[:] = patch * (1 - inner[..., None]) + cc * inner[..., None]
        box = ground_box(cam, o.X, o.Z, r + rim_w)
        return box
    if o.kind in ("puddle", "shadow"):
        ca, sa = math.cos(p["ang"]), math.sin(p["ang"])
        a = (dx * ca + dz * sa) / p["elong"]
        bb = -dx * sa + dz * ca
        ang = np.arctan2(bb, a)
        rr = p["r"] * (1 + sum(w * np.sin((k + 2) * ang + ph) for k, (w, ph) in enumerate(zip(p["wob"], p["ph"]))))
        d = np.hypot(a, bb)
        soft = px * (1 if o.kind == "puddle" else 6)
        m = np.clip((rr - d) / soft, 0, 1) * g
        if o.kind == "puddle":
            sky = np.array([150, 160, 175], np.float32) * scene.light["gain"]
            dk = p["dark"]
            cc = patch * (1 - dk) * 0.6 + sky * 0.25 * dk
            patch[:] = patch * (1 - m[..., None]) + cc * m[..., None]
        else:
            patch[:] = patch * (1 - p["dark"] * m[..., None])
        return None
    # grate / patch: oriented rectangles
    ca, sa = math.cos(p["ang"]), math.sin(p["ang"])
    a = dx * ca + dz * sa
    bb = -dx * sa + dz * ca
    m = np.clip((p["w"] / 2 - np.abs(a)) / px, 0, 1) * np.clip((p["l"] / 2 - np.abs(bb)) / px, 0, 1) * g
    if o.kind == "grate":
        bars = (np.cos(a * 2 * np.pi / 0.05) > 0.0).astype(np.float32)
        cc = np.where(bars[..., None] > 0, np.float32(20), patch * 0.8)
    else:
        cc = patch * p["dark"]
    patch[:] = patch * (1 - m[..., None]) + cc * m[..., None]
    return None


def _draw_fence(P, scene, o):
    cam, p = scene.cam, o.p
    R = p["r"] + p["fence_r"] * 0.6
    corners = [(-R, -R), (R, -R), (R, R), (-R, R)]
    hgt = 1.0
    red, white = (205, 40, 35), (235, 235, 235)
    yellow = (230, 200, 40)
    ppm, _, _ = _ppm(cam, o.X, o.Z)
    # far posts first
    order = sorted(range(4), key=lambda i: -_depth(cam, o.X + corners[i][0], o.Z + corners[i][1]))
    bx = None
    for i in order:
        j = (i + 1) % 4
        a, b = corners[i], corners[j]
        for y in ((0.9, 0.6) if p["fence_style"] != 2 else (0.9,)):
            ua, va, _ = cam.project(o.X + a[0], y, o.Z + a[1])
            ub, vb, _ = cam.project(o.X + b[0], y, o.Z + b[1])
            nseg = 6
            for k in range(nseg):
                t0, t1 = k / nseg, (k + 1) / nseg
                pa = (float(ua + (ub - ua) * t0), float(va + (vb - va) * t0))
                pb = (float(ua + (ub - ua) * t1), float(va + (vb - va) * t1))
                col = (red if k % 2 == 0 else white) if p["fence_style"] != 1 else (yellow if k % 2 == 0 else (30, 30, 30))
                P.line(pa, pb, col, max(1.0, 0.1 * ppm))
        u0, v0, _ = cam.project(o.X + a[0], 0.0, o.Z + a[1])
        u1, v1, _ = cam.project(o.X + a[0], hgt, o.Z + a[1])
        P.line((float(u0), float(v0)), (float(u1), float(v1)), (60, 60, 60), max(1.0, 0.06 * ppm))


def render(scene: Scene, rng, t: float = 0.0, return_float=False):
    """Draws the scene. Returns (RGB uint8 image HxWx3, boxes [(class_index, x1, y1, x2, y2)])."""
    c = _ground_cache(scene)
    c["t"] = t
    c["glows"] = []
    img = c["base"].copy()
    labels = []
    vis = [o for o in scene.objects if o.visible]
    # ground-level things first
    for o in vis:
        if o.kind in ("manhole_open", "manhole_closed", "puddle", "shadow", "grate", "patch"):
            b = draw_ground_object(img, scene, o, rng)
            if b is not None and o.kind in CLS:
                labels.append((o, b))
    # shadows of upright objects (day/dusk): dark ellipse offset from the sun
    if scene.light["shadow_len"] > 0:
        sun = scene.light["sun"]
        mask = np.zeros((H, W), np.float32)
        for o in vis:
            if o.kind in ("car", "bin", "person", "dump", "tree"):
                size = {"car": 2.3, "bin": 0.8, "person": 0.35, "dump": o.p.get("R", 1), "tree": 1.5}[o.kind]
                sx = o.X - math.cos(sun) * scene.light["shadow_len"] * 0.6
                sz = o.Z - math.sin(sun) * scene.light["shadow_len"] * 0.6
                a = np.linspace(0, 2 * np.pi, 16, endpoint=False)
                u, v, d = scene.cam.project(sx + size * np.cos(a) * 1.1, 0 * a, sz + size * np.sin(a) * 0.8)
                if (d > 0.5).all():
                    pts = np.round(np.stack([u, v], 1) * 4).astype(np.int32)
                    cv2.fillPoly(mask, [pts], 1.0, cv2.LINE_AA, shift=2)
        if mask.any():
            mask = cv2.GaussianBlur(mask, (0, 0), 1.5)
            img *= (1 - 0.4 * mask)[..., None]
    P = Painter(img)
    upright = [o for o in vis if o.kind in ("car", "bin", "person", "dump", "bench", "bollard", "tree", "lamp")]
    fenced = [o for o in vis if o.kind == "manhole_open" and o.p.get("fence")]
    items = upright + [Obj("fence", o.X, o.Z, dict(o.p, ref=o)) for o in fenced]
    items.sort(key=lambda o: -_depth(scene.cam, o.X, o.Z))
    drawn = {}
    for i, o in enumerate(items, start=1):
        P.cur = i
        if o.kind == "fence":
            _draw_fence(P, scene, o)
            continue
        b = draw_object(P, scene, o, rng)
        if b is not None and o.kind in CLS:
            drawn[i] = (o, b)
    # ground objects hidden under cars, bins, people, dumps lose their label
    kept = []
    for o, b in labels:
        x1, y1 = max(0, int(b[0])), max(0, int(b[1]))
        x2, y2 = min(W, int(math.ceil(b[2]))), min(H, int(math.ceil(b[3])))
        if x2 > x1 and y2 > y1 and (P.ids[y1:y2, x1:x2] > 0).mean() < 0.4:
            kept.append((o, b))
    labels = kept
    # visibility: how much of each labelled upright object is still seen
    counts = np.bincount(P.ids.ravel(), minlength=len(items) + 1)
    for i, (o, b) in drawn.items():
        area = max(1.0, (b[2] - b[0]) * (b[3] - b[1]))
        if counts[i] / area > 0.2:
            labels.append((o, b))
    img = _lighting(img, scene, rng)
    img = _weather(img, scene, rng)
    img = _camera_effects(img, scene, rng)
    out = []
    for o, b in labels:
        x1, y1 = max(0.0, b[0]), max(0.0, b[1])
        x2, y2 = min(float(W), b[2]), min(float(H), b[3])
        w0, h0 = b[2] - b[0], b[3] - b[1]
        if x2 - x1 < MIN_BOX_W or y2 - y1 < MIN_BOX_H:
            continue
        if (x2 - x1) * (y2 - y1) < 0.4 * w0 * h0:  # mostly outside the picture
            continue
        out.append((CLS[o.kind], round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)))
    return img, out


def _lighting(img, scene, rng):
    L = scene.light
    gain = L["gain"]
    tint = np.array(L["tint"], np.float32)
    if L["tod"] in ("night", "dusk") and L["lamps"]:
        c = scene.cache
        if "lampmap" not in c:
            lm = np.zeros((H, W), np.float32)
            X, Z, g = c["X"], c["Z"], c["ground"]
            for lx, lz, inten in L["lamps"]:
                d2 = (X - lx) ** 2 + (Z - lz) ** 2
                lm += inten * np.exp(-d2 / (2 * 5.0 ** 2))
            lm = np.where(g, lm, cv2.GaussianBlur(lm, (0, 0), 3) * 0.3)
            # light above the ground (objects standing in a pool) follows the pool under them
            lm = np.maximum.accumulate(lm[::-1], axis=0)[::-1] * 0.35 + lm * 0.65
            c["lampmap"] = lm
        lm = c["lampmap"] * (1.0 if L["tod"] == "night" else 0.5)
        warm = np.array([1.0, 0.85, 0.6], np.float32)
        img = img * (gain * tint + lm[..., None] * warm * 0.9)
    else:
        img = img * (gain * tint)
    if L["tod"] in ("night", "dusk"):
        for wx, wy, ws in scene.cache.get("windows", []):
            cv2.rectangle(img, (wx, wy), (wx + ws, wy + ws), (230, 200, 120), -1)
        glows = scene.cache.get("glows", [])
        if glows:
            layer = np.zeros((H, W, 3), np.float32)
            for u, v, r, col in glows:
                r = max(1.5, r)
                cv2.circle(layer, (int(u), int(v)), int(max(1, r)), [float(x) * 1.5 for x in col], -1)
            layer = cv2.GaussianBlur(layer, (0, 0), 2.5) + cv2.GaussianBlur(layer, (0, 0), 6) * 0.6
            img = img + layer
    return img


def _weather(img, scene, rng):
    w = scene.weather
    k, a = w["kind"], w["amount"]
    c = scene.cache
    if k == "fog":
        depth = np.where(c["ground"], c["d"], 80.0)
        f = 1 - np.exp(-depth / (60 / a))
        fogc = np.array([190, 192, 195], np.float32) * scene.light["gain"]
        img = img * (1 - f[..., None]) + fogc * f[..., None]
    elif k == "rain":
        layer = np.zeros((H, W), np.float32)
        n = int(300 * a)
        xs, ys = rng.uniform(-20, W + 20, n), rng.uniform(-20, H, n)
        ln = rng.uniform(6, 18, n)
        ang = rng.uniform(-0.25, -0.1)
        for x, y, l in zip(xs, ys, ln):
            cv2.line(layer, (int(x), int(y)), (int(x + l * math.sin(ang)), int(y + l)), 1.0, 1, cv2.LINE_AA)
        img = img * 0.9 + 12 + layer[..., None] * 60 * a
    elif k == "snow":
        layer = np.zeros((H, W), np.float32)
        n = int(500 * a)
        xs, ys = rng.uniform(0, W, n), rng.uniform(0, H, n)
        rs = rng.choice([1, 1, 1, 2], n)
        for x, y, r in zip(xs, ys, rs):
            cv2.circle(layer, (int(x), int(y)), int(r), 1.0, -1, cv2.LINE_AA)
        img = img * (1 - 0.1 * a) + 18 * a + layer[..., None] * 150 * a
    return img


def _camera_effects(img, scene, rng):
    p = scene.post
    img = np.clip(img, 0, 255)
    if p["motion"]:
        k = np.zeros((5, 5), np.float32)
        k[2, :] = 1 / 5
        img = cv2.filter2D(img, -1, k)
    if p["blur"] > 0:
        img = cv2.GaussianBlur(img, (0, 0), p["blur"])
    noise = rng.standard_normal((H, W, 1)).astype(np.float32) * p["noise"]
    if scene.light["tod"] == "night":
        noise = noise * 2
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    if p["jpeg"]:
        ok, enc = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(p["jpeg"])])
        img = cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(img)


def render_seed(seed: int):
    """One independent training/validation/test picture from its seed."""
    rng = np.random.default_rng(seed)
    scene = make_scene(rng, seed=seed)
    return render(scene, rng)


# ----------------------------------------------------------------------------- letterbox
IN_W, IN_H = 384, 224  # model input (a multiple of 32 each way)


def letterbox_params(sw=W, sh=H, tw=IN_W, th=IN_H):
    """Same arithmetic as src/domain/frame.rs `Letterbox::fit` (GStreamer videoscale add-borders)."""
    scale = min(tw / sw, th / sh)
    nw, nh = int(round(sw * scale)), int(round(sh * scale))
    return scale, (tw - nw) // 2, (th - nh) // 2, nw, nh


def letterbox(img, tw=IN_W, th=IN_H):
    """RGB uint8 source -> RGB uint8 at (th, tw), bilinear scale, black borders, centred."""
    sh, sw = img.shape[:2]
    scale, px, py, nw, nh = letterbox_params(sw, sh, tw, th)
    out = np.zeros((th, tw, 3), np.uint8)
    out[py:py + nh, px:px + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out


def boxes_to_input(boxes, sw=W, sh=H, tw=IN_W, th=IN_H):
    scale, px, py, _, _ = letterbox_params(sw, sh, tw, th)
    return [(c, x1 * scale + px, y1 * scale + py, x2 * scale + px, y2 * scale + py) for c, x1, y1, x2, y2 in boxes]


if __name__ == "__main__":
    import sys, time
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/synth_preview"
    import os
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    for i in range(n):
        img, boxes = render_seed(9_000_000 + i)
        vis = img[:, :, ::-1].copy()
        for c, x1, y1, x2, y2 in boxes:
            col = [(0, 0, 255), (0, 255, 0), (255, 0, 255), (255, 128, 0), (0, 255, 255), (255, 255, 0)][c]
            cv2.rectangle(vis, (int(x1), int(y1)), (int(x2), int(y2)), col, 1)
            cv2.putText(vis, CLASSES[c][:6], (int(x1), int(y1) - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.3, col, 1)
        cv2.imwrite(f"{out}/{i:03d}.jpg", vis)
    print(f"{n} scenes in {time.time() - t0:.1f}s")
