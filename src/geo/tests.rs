//! Geolocation on the full demo city (camera-configs/demo/).

use std::path::{Path, PathBuf};

use ::geo::InteriorPoint;
use rand::{Rng, SeedableRng};

use super::*;
use crate::domain::BodyKind;

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo")
}

fn demo() -> CityIndex {
    CityIndex::load(&demo_dir()).expect("demo city loads")
}

fn cat(code: &str) -> Category {
    Category::new(code).expect("valid code")
}

fn random_points(n: usize) -> Vec<Position> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(109);
    (0..n)
        .map(|_| {
            Position::new(
                rng.random_range(51.04..51.26),
                rng.random_range(71.29..71.61),
            )
        })
        .collect()
}

#[test]
fn the_demo_city_has_realistic_size() {
    let city = demo();
    let names: Vec<&str> = city.districts().iter().map(|d| d.name.as_str()).collect();
    for name in ["Almaty", "Baikonur", "Yesil", "Saryarka", "Nura"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(city.manholes().len() >= 5000);
    assert!(city.collection_points().len() >= 2000);
    assert!(city.cameras().len() >= 200, "hundreds of cameras");
    let ksk = city
        .bodies()
        .iter()
        .filter(|b| b.kind == BodyKind::HousingCooperative)
        .count();
    assert!(ksk >= 600, "{ksk} KSK/OSI");
    let lifts = city
        .bodies()
        .iter()
        .filter(|b| b.kind == BodyKind::ElevatorCompany)
        .count();
    assert!(lifts >= 60, "{lifts} elevator companies");
}

#[test]
fn a_point_inside_each_district_goes_to_that_district_and_its_akimat() {
    let city = demo();
    for district in city.districts() {
        let p = district.area.interior_point().expect("non-empty district");
        let pos = Position::new(p.y(), p.x());
        assert_eq!(city.district_at(pos).map(|d| &d.id), Some(&district.id));
        let body = city
            .responsible_body(&cat("illegal_dump"), pos)
            .expect("an akimat serves illegal dumps everywhere");
        assert_eq!(body.id, format!("akimat-{}", district.id));
        assert_eq!(body.kind, BodyKind::DistrictAdministration);
    }
}

#[test]
fn known_landmarks_fall_in_their_districts() {
    let city = demo();
    // Baiterek (left bank, new centre), the old railway-station quarter (north), Saryarka west.
    for (lat, lon, want) in [
        (51.128, 71.430, "yesil"),
        (51.20, 71.44, "baikonur"),
        (51.20, 71.35, "saryarka"),
        (51.19, 71.53, "almaty"),
        (51.07, 71.45, "nura"),
    ] {
        let got = city
            .district_at(Position::new(lat, lon))
            .map(|d| d.id.as_str());
        assert_eq!(got, Some(want), "at {lat},{lon}");
    }
    assert!(city.district_at(Position::new(51.5, 71.45)).is_none());
}

#[test]
fn rtree_routing_agrees_with_a_full_scan_everywhere() {
    let city = demo();
    let categories = [
        "illegal_dump",
        "yard_garbage",
        "elevator_stuck",
        "open_manhole",
        "power_outage",
    ]
    .map(cat);
    for pos in random_points(3000) {
        assert_eq!(
            city.district_at(pos).map(|d| &d.id),
            city.district_at_by_scan(pos).map(|d| &d.id),
            "district at {pos:?}"
        );
        for c in &categories {
            assert_eq!(
                city.responsible_body(c, pos).map(|b| &b.id),
                city.responsible_body_by_scan(c, pos).map(|b| &b.id),
                "{c} at {pos:?}"
            );
        }
    }
    assert!(city.polygon_piece_count() > city.bodies().len());
}

#[test]
fn a_yard_goes_to_its_housing_cooperative_and_its_elevator_company() {
    let city = demo();
    let yards: Vec<&Body> = city
        .bodies()
        .iter()
        .filter(|b| b.kind == BodyKind::HousingCooperative)
        .collect();
    for yard in yards.iter().step_by(7) {
        let p = yard.area.interior_point().expect("non-empty yard");
        let pos = Position::new(p.y(), p.x());
        assert_eq!(
            city.responsible_body(&cat("yard_garbage"), pos)
                .map(|b| &b.id),
            Some(&yard.id)
        );
        let lift = city
            .responsible_body(&cat("elevator_stuck"), pos)
            .expect("an elevator company");
        assert_eq!(lift.kind, BodyKind::ElevatorCompany);
        // A street outside any yard has no KSK.
    }
    assert!(
        city.responsible_body(&cat("yard_garbage"), Position::new(51.5, 71.0))
            .is_none()
    );
}

#[test]
fn nearest_manhole_agrees_with_a_full_scan_and_respects_the_radius() {
    let city = demo();
    let mut found = 0;
    for pos in random_points(1000) {
        let a = city.nearest_manhole(pos, 150.0);
        let a_id = a.as_ref().map(|n| n.item.id.clone());
        let b = city.nearest_manhole_by_scan(pos, 150.0);
        assert_eq!(a_id, b.map(|n| n.item.id.clone()), "at {pos:?}");
        if let Some(n) = a {
            found += 1;
            assert!(n.distance_m <= 150.0);
            assert!((n.item.position.distance_m(&pos) - n.distance_m).abs() < 1.0);
        }
    }
    assert!(
        found > 100,
        "only {found} points had a manhole within 150 m"
    );
    let m = &city.manholes()[42];
    assert_eq!(city.manhole(&m.id).map(|x| x.position), Some(m.position));
    assert!(city.manhole("MH-nope").is_none());
    let hit = city.nearest_manhole(m.position, 1.0).expect("itself");
    assert_eq!(hit.item.id, m.id);
    assert!(city.body(&m.owner).is_some());
}

#[test]
fn cameras_near_a_point_come_nearest_first_within_the_radius() {
    let city = demo();
    let cam = &city.cameras()[0];
    let near = city.cameras_near(cam.position, 1500.0);
    assert_eq!(near.first().map(|n| &n.item.id), Some(&cam.id));
    assert!(near.windows(2).all(|w| w[0].distance_m <= w[1].distance_m));
    assert!(near.iter().all(|n| n.distance_m <= 1500.0));
    assert_eq!(city.camera(&cam.id).map(|c| c.position), Some(cam.position));
    let cp = &city.collection_points()[3];
    assert_eq!(
        city.nearest_collection_point(cp.position, 5.0)
            .map(|n| &n.item.id),
        Some(&cp.id)
    );
}

fn copy_demo_to(dir: &Path) {
    for f in [
        DISTRICTS_FILE,
        BODIES_FILE,
        MANHOLES_FILE,
        COLLECTION_POINTS_FILE,
        CAMERAS_GEOJSON_FILE,
    ] {
        std::fs::copy(demo_dir().join(f), dir.join(f)).expect("copy layer");
    }
}

#[test]
fn a_malformed_feature_is_reported_with_its_file_and_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_demo_to(tmp.path());
    std::fs::write(
        tmp.path().join(MANHOLES_FILE),
        r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[71.4,51.1]},"properties":{"id":"MH-1","owner":"astana-su-arnasy"}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[191.4,51.1]},"properties":{"id":"MH-2","owner":"astana-su-arnasy"}}]}"#,
    )
    .expect("write");
    let err = CityIndex::load(tmp.path()).expect_err("bad longitude");
    let text = err.to_string();
    assert!(
        text.contains("manholes.geojson") && text.contains("feature #1"),
        "{text}"
    );
}

#[test]
fn an_asset_with_an_unknown_owner_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_demo_to(tmp.path());
    std::fs::write(
        tmp.path().join(COLLECTION_POINTS_FILE),
        r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[71.4,51.1]},"properties":{"id":"CP-1","owner":"nobody"}}]}"#,
    )
    .expect("write");
    let err = CityIndex::load(tmp.path()).expect_err("unknown owner");
    assert!(err.to_string().contains("`nobody`"), "{err}");
}

#[test]
fn a_failed_reload_keeps_the_previous_layers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_demo_to(tmp.path());
    let handle = CityHandle::load(tmp.path()).expect("loads");
    let before = handle.current().manholes().len();
    std::fs::write(tmp.path().join(MANHOLES_FILE), "not json").expect("write");
    assert!(handle.reload().is_err());
    assert_eq!(handle.current().manholes().len(), before);
    std::fs::write(
        tmp.path().join(MANHOLES_FILE),
        r#"{"type":"FeatureCollection","features":[]}"#,
    )
    .expect("write");
    handle.reload().expect("reloads");
    assert_eq!(handle.current().manholes().len(), 0);
}

#[test]
fn cameras_toml_placements_take_precedence_over_the_geojson() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_demo_to(tmp.path());
    std::fs::write(
        tmp.path().join(CAMERAS_TOML_FILE),
        "[[camera]]\nid = \"ast-9001\"\nname = \"Baiterek\"\nurl = \"rtsp://x/1\"\nlat = 51.128\nlon = 71.430\n",
    )
    .expect("write");
    let city = CityIndex::load(tmp.path()).expect("loads");
    assert_eq!(city.cameras().len(), 1);
    assert_eq!(city.cameras()[0].id, "ast-9001");
}

#[test]
fn the_committed_demo_layers_are_exactly_what_the_seeded_generator_writes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen_demo_city.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg("--out")
        .arg(tmp.path())
        .output()
        .expect("python3 runs the generator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        DISTRICTS_FILE,
        BODIES_FILE,
        MANHOLES_FILE,
        COLLECTION_POINTS_FILE,
        CAMERAS_GEOJSON_FILE,
    ] {
        let committed = std::fs::read(demo_dir().join(f)).expect("committed layer");
        let fresh = std::fs::read(tmp.path().join(f)).expect("generated layer");
        assert!(
            committed == fresh,
            "{f} differs from the generator's output: rerun scripts/gen_demo_city.py"
        );
    }
}
