"""Labelled test clips for QA replay: test-media/labelled/<clip>.mp4 + <clip>.labels.json.

Each clip is a fixed camera (sub-pixel jitter only) over a scene from a held-out seed
(4_000_000 + n, never rendered for training), 640x360, 25 fps, with objects appearing,
disappearing and moving. Ground truth for every frame comes from the renderer itself.
Encoding: raw RGB frames piped into GStreamer 1.22:
    fdsrc ! rawvideoparse (rgb 640x360 25/1) ! videoconvert ! I420
    ! x264enc threads=1 key-int-max=50 bframes=0 option-string=scenecut=0 speed-preset=medium
      bitrate=<kbit/s> ! video/x-h264,profile=main ! h264parse ! mp4mux ! filesink
so every clip has exactly one IDR every 50 frames. The creation/modification times mp4mux
stamps into mvhd/tkhd/mdhd are zeroed (as scripts/make-test-media.sh does), so a rebuild is
byte-identical. Label format: docs/labels.md.

    python3 make_clips.py [OUT_DIR]     (default: test-media/labelled)
"""
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np
import cv2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scene as S  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FPS = 25


def find_scene(seed, tod, weather, want, tries=200):
    """First sub-seed of `seed` whose scene satisfies want(scene) (deterministic search)."""
    for k in range(tries):
        rng = np.random.default_rng([seed, k])
        sc = S.make_scene(rng, seed=seed, time_of_day=tod, weather=weather, populate=False)
        sc.post.update(jpeg=0, noise=2.0, blur=min(sc.post["blur"], 0.7), motion=0.0)
        if want(sc, rng):
            return sc, rng, k
    raise RuntimeError(f"no scene for seed {seed}")


def place(sc, rng, kind, zones, max_depth=25, tries=60, **kw):
    """Adds one object of `kind` at a visible spot whose box is big enough; returns it or None."""
    for _ in range(tries):
        pt = S.sample_ground(sc, rng, zones, max_depth=max_depth, margin=60)
        if pt is None:
            continue
        s, t, X, Z = pt
        if kind in ("manhole_open", "manhole_closed"):
            o = S.Obj(kind, X, Z, dict(r=0.38, pattern=int(rng.integers(0, 5)), col=100.0, rust=0.0,
                                       contrast=0.9, offset=30.0, frame=0.0, depth_shade=0.1, rim=150.0,
                                       snow=0.0, fence=False, fence_r=1.0, fence_style=0, water=0.0))
            o.p.update(kw)
            b = S.ground_box(sc.cam, X, Z, o.p["r"] + 0.06)
            if not S.box_ok(b, 14, 8, 1.0):
                continue
        elif kind == "car":
            o = S._car(rng, X, Z, kw.get("ang", sc.layout["phi"]))
        elif kind == "bin":
            o = S._bin(rng, X, Z, sc.layout["phi"], kw.get("col"))
        elif kind == "dump":
            o = S._dump(rng, X, Z)
        elif kind == "person":
            o = S._person(rng, X, Z)
        else:
            o = S.Obj(kind, X, Z, dict(kw))
        o.p["s"], o.p["t"] = s, t
        sc.objects.append(o)
        return o
    return None


class Walker:
    """A person walking along the street (s changes) between two times."""

    def __init__(self, o, lay, speed, t0, t1):
        self.o, self.lay, self.speed, self.t0, self.t1 = o, lay, speed, t0, t1
        self.s0, self.tt = o.p["s"], o.p["t"]

    def at(self, t):
        self.o.visible = self.t0 <= t < self.t1
        X, Z = S.street_to_world(self.lay, self.s0 + self.speed * (t - self.t0), self.tt)
        self.o.X, self.o.Z = float(X), float(Z)


class Driver:
    """A car driving along its lane, optionally stopping at `stop_s` (and parking there)."""

    def __init__(self, o, lay, s_start, t_lane, speed, t0, t1=1e9, stop_s=None, park_t=None):
        self.o, self.lay = o, lay
        self.s_start, self.t_lane, self.speed, self.t0, self.t1 = s_start, t_lane, speed, t0, t1
        self.stop_s, self.park_t = stop_s, park_t
        self.o.p["ang"] = lay["phi"] if speed > 0 else lay["phi"] + math.pi

    def at(self, t):
        self.o.visible = self.t0 <= t < self.t1
        s = self.s_start + self.speed * (t - self.t0)
        tt = self.t_lane
        if self.stop_s is not None:
            # drive to stop_s, then pull over onto park_t over 2 s and stay
            dt_stop = (self.stop_s - self.s_start) / self.speed
            if t - self.t0 >= dt_stop:
                s = self.stop_s
                k = min(1.0, (t - self.t0 - dt_stop) / 2.0)
                tt = self.t_lane + (self.park_t - self.t_lane) * (0.5 - 0.5 * math.cos(math.pi * k))
        X, Z = S.street_to_world(self.lay, s, tt)
        self.o.X, self.o.Z = float(X), float(Z)


def shift(img, dx, dy):
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (S.W, S.H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def zero_mp4_times(path):
    data = bytearray(open(path, "rb").read())

    def walk(start, end):
        pos = start
        while pos + 8 <= end:
            size, typ = struct.unpack(">I4s", data[pos:pos + 8])
            hdr = 8
            if size == 1:
                size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
                hdr = 16
            elif size == 0:
                size = end - pos
            if size < hdr:
                break
            typ = typ.decode("latin1")
            if typ in ("moov", "trak", "mdia"):
                walk(pos + hdr, pos + size)
            elif typ in ("mvhd", "tkhd", "mdhd"):
                v = data[pos + hdr]
                n = 8 if v == 1 else 4
                data[pos + hdr + 4:pos + hdr + 4 + 2 * n] = bytes(2 * n)
            pos += size

    walk(0, len(data))
    open(path, "wb").write(bytes(data))


def encode(frames_iter, n, path, kbps):
    cmd = ["gst-launch-1.0", "-q", "fdsrc", "fd=0", "!",
           "rawvideoparse", "use-sink-caps=false", f"width={S.W}", f"height={S.H}", "format=rgb",
           f"framerate={FPS}/1", "!", "videoconvert", "!", "video/x-raw,format=I420", "!",
           "x264enc", "threads=1", "key-int-max=50", "bframes=0", "option-string=scenecut=0",
           "speed-preset=medium", f"bitrate={kbps}", "!", "video/x-h264,profile=main", "!",
           "h264parse", "!", "mp4mux", "!", "filesink", f"location={path}"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for i in range(n):
        p.stdin.write(np.ascontiguousarray(next(frames_iter)).tobytes())
    p.stdin.close()
    if p.wait() != 0:
        raise RuntimeError("gst-launch failed")
    zero_mp4_times(path)


def render_clip(name, sc, seed, seconds, script, notes, out_dir, kbps=450):
    n = int(float(os.environ.get("CLIP_SECONDS", seconds)) * FPS)
    labels = []
    jr = np.random.default_rng([seed, 99])
    jit = np.cumsum(jr.normal(0, 0.08, (n, 2)), 0)
    jit = np.clip(jit - jit.mean(0), -0.8, 0.8)

    def frames():
        for i in range(n):
            t = i / FPS
            script(t)
            rng = np.random.default_rng([seed, i])
            img, boxes = S.render(sc, rng, t=t)
            dx, dy = jit[i]
            img = shift(img, dx, dy)
            bb = []
            for c, x1, y1, x2, y2 in boxes:
                x1, x2 = max(0.0, x1 + dx), min(float(S.W), x2 + dx)
                y1, y2 = max(0.0, y1 + dy), min(float(S.H), y2 + dy)
                bb.append({"class": S.CLASSES[c], "box": [round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1)]})
            labels.append({"frame": i, "pts_ms": i * 1000 // FPS, "boxes": bb})
            yield img

    path = os.path.join(out_dir, f"{name}.mp4")
    encode(frames(), n, path, kbps)
    doc = {"format": "sitcenter-labels/1", "video": f"{name}.mp4", "width": S.W, "height": S.H, "fps": FPS,
           "classes": S.CLASSES, "generator": f"models/synth/make_clips.py seed {seed}", "notes": notes,
           "frames": labels}
    with open(os.path.join(out_dir, f"{name}.labels.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    counts = {}
    for fr in labels:
        for b in fr["boxes"]:
            counts[b["class"]] = counts.get(b["class"], 0) + 1
    print(f"{name}: {n} frames, {os.path.getsize(path)} bytes, boxes per class over all frames {counts}", flush=True)


def clip_manhole_day(out_dir):
    seed = 4_000_001

    def want(sc, rng):
        lay = sc.layout
        sc.weather.update(kind="clear")
        a = place(sc, rng, "manhole_closed", ("road", "walk"), max_depth=18)
        b = place(sc, rng, "manhole_closed", ("walk", "yard", "road"), max_depth=22)
        if a is None or b is None:
            return False
        sc.objects.append(S.Obj("puddle", *_near(sc, a, 1.6), dict(r=0.36, elong=1.1, ang=0.3, dark=0.55,
                                                                  wob=[0.05, -0.04, 0.03, 0.0], ph=[0, 1, 2, 3])))
        sc.extra = dict(a=a)
        return True

    sc, rng, k = find_scene(seed, "day", "clear", want)
    a = sc.extra["a"]
    lay = sc.layout
    walkers = []
    for j in range(4):
        o = place(sc, rng, "person", ("walk",), max_depth=30)
        if o:
            walkers.append(Walker(o, lay, rng.choice([-1, 1]) * rng.uniform(1.0, 1.6), rng.uniform(0, 8), 1e9))
    car = S._car(rng, 0, 0, lay["phi"])
    sc.objects.append(car)
    drv = Driver(car, lay, a.p["s"] - 35, 0.5 * lay["road_w"], 8.0, 1.0, 6.5)

    def script(t):
        # the cover is taken off at 4 s; a fence goes up around the hole at 10 s
        a.kind = "manhole_open" if t >= 4.0 else "manhole_closed"
        a.p["fence"] = t >= 10.0
        for w in walkers:
            w.at(t)
        drv.at(t)

    render_clip("manhole-day", sc, seed, 16, script,
                "Day, clear. Two closed covers and a round dark puddle; the nearer cover is removed at 4.0 s "
                "(manhole_open from frame 100) and fenced at 10.0 s (still manhole_open). People walk along the "
                "sidewalk; a car drives past between 1.0 and 6.5 s.", out_dir)


def _near(sc, o, d):
    X, Z = S.street_to_world(sc.layout, o.p["s"] + d, o.p["t"] + 0.3)
    return float(X), float(Z)


def clip_dump_overcast(out_dir):
    seed = 4_000_002

    def want(sc, rng):
        sc.light.update(tod="overcast", gain=0.85, tint=[0.97, 1.0, 1.04], sun=0.0, shadow_len=0.0)
        pt = S.sample_ground(sc, rng, ("walk", "yard", "parking"), max_depth=16, margin=120)
        if pt is None:
            return False
        s, t, X, Z = pt
        bins = []
        for i in range(3):
            Xb, Zb = S.street_to_world(sc.layout, s + (i - 1) * 1.3, t)
            bins.append(S._bin(rng, Xb, Zb, sc.layout["phi"], "green"))
        Xd, Zd = S.street_to_world(sc.layout, s + 3.6, t + 0.4)
        dump = S._dump(rng, Xd, Zd)
        Xe, Ze = S.street_to_world(sc.layout, s - 7, t + 1.0)
        dump2 = S._dump(rng, Xe, Ze)
        b = S.ground_box(sc.cam, Xd, Zd, dump.p["R"])
        b2 = S.ground_box(sc.cam, Xe, Ze, dump2.p["R"])
        if not (S.box_ok(b, 20, 10, 1.0) and S.box_ok(b2, 20, 10, 1.0)):
            return False
        sc.objects.extend(bins + [dump, dump2])
        sc.extra = dict(dump=dump, dump2=dump2)
        return True

    sc, rng, k = find_scene(seed, "overcast", "clear", want)
    dump, dump2 = sc.extra["dump"], sc.extra["dump2"]
    lay = sc.layout
    place(sc, rng, "manhole_closed", ("road", "walk"), max_depth=20)
    walkers = []
    for j in range(3):
        o = place(sc, rng, "person", ("walk", "yard"), max_depth=25)
        if o:
            walkers.append(Walker(o, lay, rng.choice([-1, 1]) * rng.uniform(0.8, 1.5), rng.uniform(0, 6), rng.uniform(10, 14)))

    def script(t):
        dump.visible = t >= 5.0  # a pile is left beside the bins at 5 s
        dump2.visible = t < 9.0  # the pile away from the bins is cleared at 9 s
        for w in walkers:
            w.at(t)

    render_clip("dump-overcast", sc, seed, 14, script,
                "Overcast day. Three green containers at a collection point; a second dump away from the bins "
                "is present until 9.0 s (cleared at frame 225); a new dump appears beside the bins at 5.0 s "
                "(frame 125). A closed cover; people pass.", out_dir)


def clip_sidewalk_snow(out_dir):
    seed = 4_000_003

    def want(sc, rng):
        sc.weather.update(kind="snow", amount=0.5, ground_snow=0.5)
        lay = sc.layout
        sc.layout["crosswalk"] = None
        a = place(sc, rng, "manhole_closed", ("walk", "road"), max_depth=18, snow=0.2)
        # the spot on the sidewalk the car will park on must be well in view
        s_park = a.p["s"] + 6 if a else 0
        Xp, Zp = S.street_to_world(lay, s_park, lay["road_w"] + 1.2)
        u, v, d = sc.cam.project(Xp, 0.0, Zp)
        ok = a is not None and 80 < float(u) < S.W - 80 and 150 < float(v) < S.H - 30 and d < 30
        sc.extra = dict(s_park=s_park)
        return ok

    sc, rng, k = find_scene(seed, "day", "snow", want)
    lay = sc.layout
    car = S._car(rng, 0, 0, lay["phi"])
    sc.objects.append(car)
    drv = Driver(car, lay, sc.extra["s_park"] - 40, 0.45 * lay["road_w"], 9.0, 0.0, stop_s=sc.extra["s_park"],
                 park_t=lay["road_w"] + 1.2)
    car2 = S._car(rng, 0, 0, lay["phi"])
    sc.objects.append(car2)
    drv2 = Driver(car2, lay, sc.extra["s_park"] + 40, -0.5 * lay["road_w"], -10.0, 7.0, 12.0)
    walkers = []
    for j in range(3):
        o = place(sc, rng, "person", ("walk",), max_depth=28)
        if o:
            walkers.append(Walker(o, lay, rng.choice([-1, 1]) * rng.uniform(0.8, 1.4), rng.uniform(0, 9), 1e9))

    def script(t):
        drv.at(t)
        drv2.at(t)
        for w in walkers:
            w.at(t)

    render_clip("sidewalk-snow", sc, seed, 16, script,
                "Day, snowing, snow on lawns and curbs. A car drives in and pulls up onto the sidewalk "
                "(parked there from about 6.5 s to the end); another car passes the other way from 7 to 12 s; "
                "a closed cover under light snow; people walk.", out_dir, kbps=550)


def clip_night(out_dir):
    seed = 4_000_004

    def want(sc, rng):
        sc.weather.update(kind="clear")
        o = place(sc, rng, "manhole_open", ("road", "walk"), max_depth=16, r=0.42, rim=165.0, depth_shade=0.0)
        if o is None:
            return False
        # a street lamp beside it, so the hole is lit
        s, t = o.p["s"] + 1.5, (sc.layout["road_w"] + 0.5) * (1 if o.p["t"] >= 0 else -1)
        X, Z = S.street_to_world(sc.layout, s, t)
        sc.light["lamps"].append((float(X), float(Z), 1.3))
        sc.objects.append(S.Obj("lamp", float(X), float(Z), dict(h=7.0)))
        sc.extra = dict(o=o)
        return True

    sc, rng, k = find_scene(seed, "night", "clear", want)
    lay = sc.layout
    o = sc.extra["o"]
    place(sc, rng, "manhole_closed", ("road", "walk"), max_depth=18)
    place(sc, rng, "bin", ("walk", "yard"), max_depth=20)
    cars = []
    for j, (t0, sp) in enumerate([(0.5, 9.0), (5.0, -11.0), (9.0, 7.0)]):
        c = S._car(rng, 0, 0, lay["phi"])
        c.p["lights"] = True
        sc.objects.append(c)
        cars.append(Driver(c, lay, o.p["s"] - 45 * np.sign(sp), np.sign(sp) * 0.5 * lay["road_w"], sp, t0, t0 + 9))
    walkers = []
    for j in range(2):
        p = place(sc, rng, "person", ("walk",), max_depth=22)
        if p:
            walkers.append(Walker(p, lay, rng.choice([-1, 1]) * 1.2, rng.uniform(0, 5), 1e9))

    def script(t):
        for d in cars:
            d.at(t)
        for w in walkers:
            w.at(t)

    render_clip("night", sc, seed, 14, script,
                "Night, street lamps. An open manhole in a lamp's light for the whole clip, a closed cover, a bin; "
                "cars with head/tail lights pass (0.5-9.5 s, 5-14 s, 9-14 s); two people walk.", out_dir, kbps=400)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "test-media", "labelled")
    os.makedirs(out, exist_ok=True)
    only = sys.argv[2:] or ["manhole-day", "dump-overcast", "sidewalk-snow", "night"]
    fns = {"manhole-day": clip_manhole_day, "dump-overcast": clip_dump_overcast,
           "sidewalk-snow": clip_sidewalk_snow, "night": clip_night}
    for n in only:
        fns[n](out)
