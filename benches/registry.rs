//! Registry write path against the real PostgreSQL (`SITCENTER_TEST_PG`, default
//! `host=127.0.0.1 port=5432 user=postgres`), in a throwaway database dropped at the end.
//!
//! Baseline in the same run: one bare `INSERT` transaction (the floor of any durable write on
//! this server). `cargo bench --bench registry`; figures in docs/performance.md.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sitcenter::config::IncidentsConfig;
use sitcenter::domain::{Category, EvidenceRef, Observation, Position, Source};
use sitcenter::geo::CityHandle;
use sitcenter::incidents::Intake;
use sitcenter::registry::{Registry, SystemClock};
use tokio_postgres::NoTls;

fn server() -> String {
    std::env::var("SITCENTER_TEST_PG")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres".to_owned())
}

async fn admin(sql: &str) {
    let url = format!("{} dbname=postgres", server());
    let (client, conn) = match tokio_postgres::connect(&url, NoTls).await {
        Ok(pair) => pair,
        Err(e) => panic!("the benchmark needs PostgreSQL at `{url}`: {e}"),
    };
    tokio::spawn(conn);
    if let Err(e) = client.batch_execute(sql).await {
        panic!("`{sql}`: {e}");
    }
}

fn observation(category: &str, n: u64, pos: Position) -> Observation {
    Observation {
        category: Category::new(category).unwrap_or_else(|e| panic!("{e}")),
        source: Source::Camera,
        source_ref: format!("bench:{category}:{n}"),
        position: pos,
        uncertainty_m: Some(5.0),
        address: None,
        description: None,
        actor: "ast-0001".into(),
        observed_at: chrono::Utc::now(),
        evidence: vec![EvidenceRef {
            kind: "image".into(),
            uri: Some(format!("s3://evidence/bench/{n}.jpg")),
            data: None,
        }],
    }
}

fn bench(c: &mut Criterion) {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let name = format!("sitcenter_bench_{:016x}", rand::random::<u64>());
    rt.block_on(admin(&format!("CREATE DATABASE {name}")));
    let url = format!("{} dbname={name}", server());
    let registry = rt
        .block_on(Registry::connect(&url, Arc::new(SystemClock)))
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
    let city = Arc::new(CityHandle::load(&dir).unwrap_or_else(|e| panic!("{e}")));
    let intake = Intake::new(Arc::new(IncidentsConfig::default()), city);
    let (client, conn) = rt
        .block_on(tokio_postgres::connect(&url, NoTls))
        .unwrap_or_else(|e| panic!("{e}"));
    rt.spawn(conn);
    rt.block_on(
        client.batch_execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, v text)"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let counter = AtomicU64::new(0);

    let mut g = c.benchmark_group("registry_write");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_bare_insert_transaction", |b| {
        b.iter(|| {
            rt.block_on(
                client.batch_execute("BEGIN; INSERT INTO bench_floor (v) VALUES ('x'); COMMIT;"),
            )
            .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.bench_function("submit_registers_a_new_appeal", |b| {
        b.iter(|| {
            // A fresh 100 m grid cell each time: never within the 50 m dedup radius of another.
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let pos = Position::new(
                51.06 + 0.0009 * (n % 200) as f64,
                71.31 + 0.0015 * ((n / 200) % 180) as f64,
            );
            let o = observation("road_damage", n, pos);
            let plan = intake.plan(&o).unwrap_or_else(|e| panic!("{e}"));
            rt.block_on(registry.submit(&o, &plan))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.bench_function("submit_joins_an_open_appeal", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let o = observation("illegal_dump", n, Position::new(51.128, 71.43));
            let plan = intake.plan(&o).unwrap_or_else(|e| panic!("{e}"));
            rt.block_on(registry.submit(&o, &plan))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.finish();
    drop(registry);
    rt.block_on(admin(&format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )));
}

criterion_group!(benches, bench);
criterion_main!(benches);
