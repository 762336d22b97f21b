#!/usr/bin/env python3
"""Generate the Astana demo city's reference layers (GeoJSON) reproducibly.

Real open data for Astana's service areas, manholes and collection points is not at hand, so this
script draws a city of realistic size and shape from a fixed seed (stdlib only):

- districts.geojson          the five districts (Almaty, Baikonur, Yesil, Saryarka, Nura), rough
                             approximations of the real boundaries: the Esil river splits the old
                             right bank (Saryarka west, Baikonur centre, Almaty east) from the new
                             left bank (Yesil) and the south/west (Nura).
- bodies.geojson             responsible bodies and their service areas per category: district
                             administrations (akimats), city utility services, ~600 KSK/OSI housing
                             cooperatives (small yard polygons) and 81 elevator companies.
- manholes.geojson           6000 manholes (id, position, owner body).
- collection_points.geojson  3000 waste collection points (id, position, owner body).
- cameras.geojson            400 cameras (id, position, heading); used only when the lead's
                             cameras.toml is absent.

Usage: python3 scripts/gen_demo_city.py [--out camera-configs/demo] [--seed 109]
Same seed, same bytes.
"""

import argparse
import json
import math
import os
import random

LON_MIN, LON_MAX = 71.30, 71.60
LAT_MIN, LAT_MAX = 51.05, 51.25

# Boundary nodes (lon, lat).
A = (71.30, 51.25)
B = (71.41, 51.25)
C = (71.47, 51.25)
D = (71.60, 51.25)
R0 = (71.30, 51.150)
R05 = (71.38, 51.161)
R1 = (71.41, 51.158)
R2 = (71.47, 51.157)
R3 = (71.60, 51.130)
N1 = (71.38, 51.100)
N2 = (71.60, 51.100)
S0 = (71.30, 51.05)
S3 = (71.60, 51.05)

# Edges as polylines; the river carries its own bends.
EDGES_SPEC = {
    "AB": [A, B],
    "BC": [B, C],
    "CD": [C, D],
    "B_R1": [B, (71.412, 51.20), R1],
    "C_R2": [C, (71.468, 51.21), R2],
    "D_R3": [D, (71.60, 51.19), R3],
    "R3_N2": [R3, N2],
    "N2_S3": [N2, S3],
    "S3_S0": [S3, S0],
    "S0_R0": [S0, R0],
    "R0_A": [R0, A],
    "rv0": [R0, (71.34, 51.155), R05],
    "rv1": [R05, (71.395, 51.163), R1],
    "rv2": [R1, (71.44, 51.152), R2],
    "rv3": [R2, (71.50, 51.150), (71.54, 51.138), R3],
    "R05_N1": [R05, (71.382, 51.13), N1],
    "N1_N2": [N1, (71.48, 51.098), N2],
}

OUTER = {"AB", "BC", "CD", "D_R3", "R3_N2", "N2_S3", "S3_S0", "S0_R0", "R0_A"}

# Each district: list of (edge, forward?) forming a closed ring.
DISTRICTS = [
    ("saryarka", "Saryarka", [("AB", True), ("B_R1", True), ("rv1", False), ("rv0", False), ("R0_A", True)]),
    ("baikonur", "Baikonur", [("BC", True), ("C_R2", True), ("rv2", False), ("B_R1", False)]),
    ("almaty", "Almaty", [("CD", True), ("D_R3", True), ("rv3", False), ("C_R2", False)]),
    ("yesil", "Yesil", [("rv1", True), ("rv2", True), ("rv3", True), ("R3_N2", True), ("N1_N2", False), ("R05_N1", False)]),
    ("nura", "Nura", [("rv0", True), ("R05_N1", True), ("N1_N2", True), ("N2_S3", True), ("S3_S0", True), ("S0_R0", True)]),
]


def densify(rng, polyline, jitter, outer):
    """Split every leg into short segments with a smooth perpendicular wobble (zero at nodes)."""
    out = [polyline[0]]
    for (x0, y0), (x1, y1) in zip(polyline, polyline[1:]):
        length = math.hypot(x1 - x0, y1 - y0)
        n = max(2, int(length / 0.002))
        nx, ny = -(y1 - y0) / length, (x1 - x0) / length
        phase = rng.uniform(0, math.pi)
        for i in range(1, n):
            t = i / n
            w = 0.0 if outer else jitter * math.sin(math.pi * t) * math.sin(phase + 7 * t) * rng.uniform(0.6, 1.0)
            out.append((x0 + (x1 - x0) * t + nx * w, y0 + (y1 - y0) * t + ny * w))
        out.append((x1, y1))
    return out


def rnd(p):
    return [round(p[0], 6), round(p[1], 6)]


def point_in_ring(x, y, ring):
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def feature(geometry, properties):
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def collection(features):
    return {"type": "FeatureCollection", "features": features}


def rect(lon, lat, dlon, dlat):
    return [rnd((lon, lat)), rnd((lon + dlon, lat)), rnd((lon + dlon, lat + dlat)), rnd((lon, lat + dlat)), rnd((lon, lat))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "camera-configs", "demo"))
    ap.add_argument("--seed", type=int, default=109)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)

    edges = {name: [rnd(p) for p in densify(rng, pl, 0.0015, name in OUTER)] for name, pl in EDGES_SPEC.items()}
    district_rings = {}
    district_features = []
    for code, name, parts in DISTRICTS:
        ring = []
        for edge, forward in parts:
            pts = edges[edge] if forward else list(reversed(edges[edge]))
            ring.extend(pts if not ring else pts[1:])
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        district_rings[code] = ring
        district_features.append(
            feature({"type": "Polygon", "coordinates": [ring]}, {"id": code, "name": name, "akimat": f"akimat-{code}"})
        )

    def district_of(lon, lat):
        for code, ring in district_rings.items():
            if point_in_ring(lon, lat, ring):
                return code
        return None

    bodies = []
    # District administrations: the district itself.
    for code, name, _ in DISTRICTS:
        bodies.append(
            feature(
                {"type": "Polygon", "coordinates": [district_rings[code]]},
                {
                    "id": f"akimat-{code}",
                    "name": f"Akimat of {name} district",
                    "kind": "district_administration",
                    "categories": ["illegal_dump", "road_damage", "street_cleaning", "landscaping"],
                },
            )
        )
    city = [rnd((LON_MIN, LAT_MIN)), rnd((LON_MAX, LAT_MIN)), rnd((LON_MAX, LAT_MAX)), rnd((LON_MIN, LAT_MAX)), rnd((LON_MIN, LAT_MIN))]
    utilities = [
        ("astana-su-arnasy", "Astana Su Arnasy (water and sewerage)", ["open_manhole", "flooding", "water_outage"]),
        ("astana-teplotranzit", "Astana-Teplotranzit (district heating)", ["heating_outage"]),
        ("astana-rek", "Astana-REK (electricity)", ["power_outage"]),
        ("astana-tazalyk", "Astana Tazalyk (sanitation)", ["overflowing_container"]),
    ]
    for uid, uname, cats in utilities:
        bodies.append(feature({"type": "Polygon", "coordinates": [city]}, {"id": uid, "name": uname, "kind": "utility_service", "categories": cats}))

    # KSK/OSI: ~600 yard polygons on a grid of residential blocks, never overlapping.
    cell_lon, cell_lat = 0.004, 0.0025
    cells = set()
    ksk = []
    while len(ksk) < 605:
        i = rng.randrange(int((LON_MAX - LON_MIN) / cell_lon))
        j = rng.randrange(int((LAT_MAX - LAT_MIN) / cell_lat))
        if (i, j) in cells:
            continue
        lon = LON_MIN + i * cell_lon + 0.0004
        lat = LAT_MIN + j * cell_lat + 0.0003
        dlon = rng.uniform(0.0015, 0.0031)
        dlat = rng.uniform(0.0010, 0.0019)
        if district_of(lon + dlon / 2, lat + dlat / 2) is None:
            continue
        cells.add((i, j))
        ksk.append((len(ksk) + 1, lon, lat, dlon, dlat))
    elevator_count = 81
    elevator_areas = {e: [] for e in range(1, elevator_count + 1)}
    for n, lon, lat, dlon, dlat in ksk:
        ring = rect(lon, lat, dlon, dlat)
        bodies.append(
            feature(
                {"type": "Polygon", "coordinates": [ring]},
                {"id": f"ksk-{n:04d}", "name": f"OSI \u2116{n}", "kind": "housing_cooperative", "categories": ["yard_garbage", "building_maintenance"]},
            )
        )
        elevator_areas[rng.randint(1, elevator_count)].append([ring])
    for e, polys in elevator_areas.items():
        if not polys:
            continue
        bodies.append(
            feature(
                {"type": "MultiPolygon", "coordinates": polys},
                {"id": f"lift-{e:03d}", "name": f"Elevator service company {e}", "kind": "elevator_company", "categories": ["elevator_stuck"]},
            )
        )

    def city_point():
        while True:
            lon = rng.uniform(LON_MIN + 0.005, LON_MAX - 0.005)
            lat = rng.uniform(LAT_MIN + 0.005, LAT_MAX - 0.005)
            if district_of(lon, lat):
                return lon, lat

    manholes = []
    for n in range(1, 6001):
        lon, lat = city_point()
        owner = "astana-su-arnasy" if rng.random() < 0.7 else "astana-teplotranzit"
        kind = "sewer" if owner == "astana-su-arnasy" else "heating"
        manholes.append(feature({"type": "Point", "coordinates": rnd((lon, lat))}, {"id": f"MH-{n:06d}", "owner": owner, "network": kind}))
    points = []
    for n in range(1, 3001):
        lon, lat = city_point()
        points.append(feature({"type": "Point", "coordinates": rnd((lon, lat))}, {"id": f"CP-{n:05d}", "owner": "astana-tazalyk", "containers": rng.randint(1, 6)}))
    cameras = []
    for n in range(1, 401):
        lon, lat = city_point()
        cameras.append(
            feature(
                {"type": "Point", "coordinates": rnd((lon, lat))},
                {"id": f"ast-{n:04d}", "name": f"Camera {n}", "heading_deg": rng.randrange(0, 360), "district": district_of(lon, lat)},
            )
        )

    for fname, feats in [
        ("districts.geojson", district_features),
        ("bodies.geojson", bodies),
        ("manholes.geojson", manholes),
        ("collection_points.geojson", points),
        ("cameras.geojson", cameras),
    ]:
        with open(os.path.join(args.out, fname), "w", encoding="utf-8") as f:
            json.dump(collection(feats), f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"{fname}: {len(feats)} features")


if __name__ == "__main__":
    main()
