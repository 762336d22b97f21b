//! Geolocation lookups on the full demo city: R-tree (split polygons / point tree) against the
//! linear-scan baseline, measured in the same run.
//!
//! `cargo bench --bench geo`; figures in docs/performance.md.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use sitcenter::domain::{Category, Position};
use sitcenter::geo::CityIndex;

const QUERIES: usize = 1000;

fn queries() -> Vec<Position> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    (0..QUERIES)
        .map(|_| {
            Position::new(
                rng.random_range(51.06..51.24),
                rng.random_range(71.31..71.59),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
    let city = match CityIndex::load(&dir) {
        Ok(city) => city,
        Err(e) => panic!("demo city must load for the benchmark: {e}"),
    };
    let points = queries();
    let yard = Category::new("yard_garbage").unwrap_or_else(|e| panic!("{e}"));

    let mut g = c.benchmark_group("district_at");
    g.throughput(Throughput::Elements(QUERIES as u64));
    g.bench_function("rtree_split_pieces", |b| {
        b.iter(|| {
            points
                .iter()
                .filter(|p| city.district_at(**p).is_some())
                .count()
        })
    });
    g.bench_function("linear_scan_whole_polygons", |b| {
        b.iter(|| {
            points
                .iter()
                .filter(|p| city.district_at_by_scan(**p).is_some())
                .count()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("responsible_body_yard_garbage");
    g.throughput(Throughput::Elements(QUERIES as u64));
    g.bench_function("rtree_split_pieces", |b| {
        b.iter(|| {
            points
                .iter()
                .filter(|p| city.responsible_body(&yard, **p).is_some())
                .count()
        })
    });
    g.bench_function("linear_scan_whole_polygons", |b| {
        b.iter(|| {
            points
                .iter()
                .filter(|p| city.responsible_body_by_scan(&yard, **p).is_some())
                .count()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("nearest_manhole_150m");
    g.throughput(Throughput::Elements(QUERIES as u64));
    g.bench_function("rtree", |b| {
        b.iter(|| {
            points
                .iter()
                .filter(|p| city.nearest_manhole(**p, 150.0).is_some())
                .count()
        })
    });
    g.bench_function("linear_scan", |b| {
        b.iter(|| {
            points
                .iter()
                .filter(|p| {
                    city.nearest_manhole_by_scan(black_box(**p), 150.0)
                        .is_some()
                })
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
