//! Binary level: slow clients cannot exhaust `sitcenter run`. Hundreds of raw TCP sockets
//! from one address trickle request headers or bodies a byte at a time; meanwhile a client
//! from another address is served, the cameras keep streaming (their frame counters
//! advance), and the server closes the slow-header sockets itself (header-read timeout).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    TestDatabase, copy_city_layers, free_port, get_with, run_cli, sign_in, spawn, wait_listening,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "edge correct horse";
/// Sockets of each kind (slow header, slow body) the attacker opens.
const SLOW_SOCKETS: usize = 150;

fn write_site(dir: &Path, sim_port: u16, http_port: u16, db: &TestDatabase) {
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[site]\nname = \"edge\"\ncity = \"Astana\"\nbounds = {{ south = 51.0, west = 71.0, north = 51.5, east = 72.0 }}\n\
             [ingest]\nstall_timeout_s = 3\nbackoff_initial_s = 0.2\nbackoff_max_s = 2\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\nheader_read_timeout_s = 2\nmax_connections = 400\nmax_connections_per_address = 100\n{}",
            db.registry_toml()
        ),
    )
    .expect("site.toml");
    copy_city_layers(dir);
    let mut cameras = String::new();
    for i in 0..2 {
        cameras.push_str(&format!(
            "[[camera]]\nid = \"edge-{i}\"\nname = \"Edge camera {i}\"\nurl = \"rtsp://127.0.0.1:{sim_port}/cam/{}\"\nlat = 51.1{i}\nlon = 71.4{i}\naddress = \"Astana, edge street {i}\"\n",
            i + 1
        ));
    }
    std::fs::write(dir.join("cameras.toml"), cameras).expect("cameras.toml");
}

/// `sitcenter_frames_received_total` of every camera, summed.
fn frames_received(port: u16, cookie: &str) -> u64 {
    let (status, metrics) = get_with(port, "/metrics", cookie);
    assert_eq!(status, 200, "{metrics}");
    metrics
        .lines()
        .filter(|l| l.starts_with("sitcenter_frames_received_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A socket from 127.0.0.2 (the attacker's address) that sends `head` and then one byte of
/// `trickle` every 500 ms; returns whether the server closed it (read EOF or reset) before
/// the trickle ran out.
async fn slow_client(port: u16, head: String, trickle: Vec<u8>) -> bool {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if socket.bind("127.0.0.2:0".parse().expect("addr")).is_err() {
        return false;
    }
    let Ok(stream) = socket.connect(([127, 0, 0, 1], port).into()).await else {
        return false;
    };
    let (mut reader, mut writer) = stream.into_split();
    let closed = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ended = reader.read_to_end(&mut sink).await;
    });
    if writer.write_all(head.as_bytes()).await.is_err() {
        return true;
    }
    for byte in trickle {
        if closed.is_finished() {
            return true;
        }
        if writer.write_all(&[byte]).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    closed.is_finished()
}

/// `GET /health` from 127.0.0.1: its status, or the connection's error.
fn health(port: u16) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(String::from_utf8_lossy(&response[..response.len().min(16)])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

#[test]
fn slow_header_and_slow_body_clients_do_not_starve_other_clients_or_the_cameras() {
    let sim_port = free_port();
    let media = concat!(env!("CARGO_MANIFEST_DIR"), "/test-media/synthetic-360p.mp4");
    let _sim = spawn(&[
        "rtsp-sim",
        "--port",
        &sim_port.to_string(),
        "--cameras",
        "2",
        "--media",
        media,
    ]);
    wait_listening(sim_port);
    let dir = tempfile::tempdir().expect("tempdir");
    let http_port = free_port();
    let db = TestDatabase::create();
    write_site(dir.path(), sim_port, http_port, &db);
    let site = dir.path().to_str().expect("utf-8 path");
    run_cli(
        &[
            "user",
            "add",
            "--site",
            site,
            "edge-admin",
            "--role",
            "admin",
        ],
        &[("SITCENTER_PASSWORD", PASSWORD)],
    );
    let _service = spawn(&["run", "--site", site]);
    wait_listening(http_port);
    let (cookie, _csrf) = sign_in(http_port, "edge-admin", PASSWORD);
    let deadline = Instant::now() + Duration::from_secs(60);
    while frames_received(http_port, &cookie) == 0 {
        assert!(Instant::now() < deadline, "the cameras never streamed");
        std::thread::sleep(Duration::from_millis(250));
    }

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut attack = Vec::new();
    for i in 0..SLOW_SOCKETS {
        // A header that never ends: one byte of a header line every 500 ms for 30 s.
        attack.push(runtime.spawn(slow_client(
            http_port,
            format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{i}: "),
            vec![b'a'; 60],
        )));
        // A complete header announcing a body that trickles in.
        attack.push(runtime.spawn(slow_client(
            http_port,
            "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n".to_owned(),
            vec![b' '; 60],
        )));
    }
    // While the attack runs: another client is served and the cameras keep streaming.
    std::thread::sleep(Duration::from_secs(1));
    let before = frames_received(http_port, &cookie);
    let mut served = 0;
    let mut retried = 0;
    for _ in 0..20 {
        // A connection the kernel reset while the attack's burst of connects overflowed the
        // listen queue (seen once in a loaded CI run) is retried, as a real client does; the
        // request itself must then be served.
        let mut status = None;
        for attempt in 0..3 {
            match health(http_port) {
                Ok(code) => {
                    status = Some(code);
                    break;
                }
                Err(error) => {
                    retried += 1;
                    eprintln!("attempt {attempt}: {error}");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        assert_eq!(status, Some(200));
        served += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("legitimate requests served: {served}/20 ({retried} connection retries)");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = frames_received(http_port, &cookie);
    while after <= before {
        assert!(
            Instant::now() < deadline,
            "frame counters stalled at {before}"
        );
        std::thread::sleep(Duration::from_millis(250));
        after = frames_received(http_port, &cookie);
    }
    let outcomes: Vec<bool> = runtime.block_on(async {
        let mut out = Vec::new();
        for task in attack {
            out.push(task.await.unwrap_or(false));
        }
        out
    });
    // Slow-header sockets (even indexes) were all closed by the server, within its
    // header-read timeout, long before their 30 s trickle ended.
    let headers_closed = outcomes.iter().step_by(2).filter(|c| **c).count();
    let bodies_closed = outcomes.iter().skip(1).step_by(2).filter(|c| **c).count();
    assert_eq!(
        headers_closed, SLOW_SOCKETS,
        "slow-header sockets closed by the server"
    );
    assert!(
        bodies_closed > 0,
        "slow-body sockets past the per-address cap are closed at once"
    );
    assert_eq!(served, 20);
    eprintln!(
        "slow clients: {SLOW_SOCKETS} slow-header + {SLOW_SOCKETS} slow-body sockets from one address; \
         {headers_closed} slow-header and {bodies_closed} slow-body closed by the server; \
         20/20 requests from another address served; frames received {before} → {after}"
    );
}
