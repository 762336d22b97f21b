//! Helpers shared by the binary-level tests: processes of the `sitcenter` binary,
//! free ports, and a minimal HTTP/1.1 client over a plain TCP stream.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `sitcenter` process, killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _killed = self.0.kill();
        let _reaped = self.0.wait();
    }
}

pub fn spawn(args: &[&str]) -> Process {
    Process(
        Command::new(env!("CARGO_BIN_EXE_sitcenter"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sitcenter"),
    )
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body`;
/// returns the status and the raw response body.
pub fn request(port: u16, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "{head}\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("send head");
    stream.write_all(body).expect("send body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let status = String::from_utf8_lossy(&response[..response.len().min(16)])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |p| p + 4);
    (status, response[start..].to_vec())
}

pub fn get(port: u16, path: &str) -> (u16, String) {
    let (status, body) = request(port, &format!("GET {path} HTTP/1.1"), b"");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Runs `sitcenter args…` to completion with `env`; its stdout, or a panic with its stderr.
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sitcenter"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("run sitcenter");
    assert!(
        output.status.success(),
        "sitcenter {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Signs in over HTTP; the `Cookie:` header line and the CSRF token of the new session.
pub fn sign_in(port: u16, user: &str, password: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let body = format!(r#"{{"user":"{user}","password":"{password}"}}"#);
    write!(
        stream,
        "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "sign-in failed: {response}"
    );
    let cookie = response
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let json: serde_json::Value =
        serde_json::from_str(response.split_once("\r\n\r\n").map_or("", |(_, b)| b))
            .expect("JSON answer");
    let csrf = json["csrf"].as_str().expect("csrf token").to_owned();
    (format!("Cookie: {cookie}"), csrf)
}

/// `GET path` with extra header lines (a cookie, a bearer key).
pub fn get_with(port: u16, path: &str, headers: &str) -> (u16, String) {
    let (status, body) = request(port, &format!("GET {path} HTTP/1.1\r\n{headers}"), b"");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A database of its own for one test, dropped at the end.
pub struct TestDatabase {
    pub name: String,
}

pub const PG: &str = "host=127.0.0.1 port=5432 user=postgres";

fn psql(sql: &str) {
    psql_in("postgres", sql);
}

fn psql_in(database: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let url = std::env::var("SITCENTER_TEST_PG").unwrap_or_else(|_| PG.to_owned());
        let (client, connection) =
            tokio_postgres::connect(&format!("{url} dbname={database}"), tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL is running (scripts/services.sh starts it)");
        let driver = tokio::spawn(connection);
        client.batch_execute(sql).await.expect(sql);
        drop(client);
        let _ended = driver.await;
    });
}

impl TestDatabase {
    pub fn create() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("sitcenter_e2e_{}_{nanos}", std::process::id());
        psql(&format!("CREATE DATABASE {name}"));
        // The service's own login (the owner `postgres` runs the migrations and grants it the
        // service role), as in production: docs/security.md "Database roles".
        psql(&format!("CREATE ROLE {name}_svc LOGIN"));
        Self { name }
    }

    /// Runs SQL in this database as its owner (to do what the service may not).
    pub fn as_owner(&self, sql: &str) {
        psql_in(&self.name, sql);
    }

    /// The `[registry]` section of a site using this database.
    pub fn registry_toml(&self) -> String {
        let url = std::env::var("SITCENTER_TEST_PG").unwrap_or_else(|_| PG.to_owned());
        format!(
            "[registry]\ndatabase_url = \"{url} dbname={}\"\nservice_user = \"{}_svc\"\n",
            self.name, self.name
        )
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        psql(&format!("DROP ROLE IF EXISTS {}_svc", self.name));
    }
}

/// Copies the demo city's layers (`*.geojson`) into a test site folder.
pub fn copy_city_layers(dir: &std::path::Path) {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
    for entry in std::fs::read_dir(&demo).expect("demo site") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "geojson") {
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy layer");
        }
    }
}

/// A headless Chromium driven through chromedriver's WebDriver protocol (W3C), spoken over
/// the same plain HTTP client.
pub struct Browser {
    port: u16,
    session: String,
    _driver: Child,
    _profile: tempfile::TempDir,
}

/// One WebDriver command. chromedriver keeps connections open whatever `Connection` says,
/// so the answer is read by its `Content-Length`.
fn webdriver(port: u16, method: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let text = if method == "GET" || method == "DELETE" {
        String::new()
    } else {
        body.to_string()
    };
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect chromedriver");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    )
    .expect("send");
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let (head_end, length) = loop {
        let n = stream.read(&mut buf).expect("read chromedriver");
        assert!(n > 0, "chromedriver closed the connection");
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while raw.len() < head_end + length {
        let n = stream.read(&mut buf).expect("read chromedriver");
        assert!(n > 0, "chromedriver closed the connection");
        raw.extend_from_slice(&buf[..n]);
    }
    let status: u16 = String::from_utf8_lossy(&raw[..16.min(raw.len())])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let answer: serde_json::Value =
        serde_json::from_slice(&raw[head_end..head_end + length]).unwrap_or_default();
    assert_eq!(status, 200, "webdriver {method} {path}: {answer}");
    answer["value"].clone()
}

impl Browser {
    pub fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (scripts/bootstrap.sh installs it)");
        wait_listening(port);
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = serde_json::json!({ "capabilities": { "alwaysMatch": {
            "goog:chromeOptions": { "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                // Software WebGL for the MapLibre maps, at an operator screen's size.
                "--enable-unsafe-swiftshader", "--window-size=1366,768",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                format!("--user-data-dir={}", profile.path().display()),
            ] }
        } } });
        let session = webdriver(port, "POST", "/session", &capabilities)["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Self {
            port,
            session,
            _driver: driver,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
        webdriver(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            &body,
        )
    }

    pub fn open(&self, url: &str) {
        self.call("POST", "/url", serde_json::json!({ "url": url }));
    }

    fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            serde_json::json!({ "using": "css selector", "value": css }),
        );
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .expect("element id")
            .to_owned()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            serde_json::json!({ "text": text }),
        );
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &format!("/element/{id}/click"),
            serde_json::json!({}),
        );
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub fn eval(&self, script: &str) -> serde_json::Value {
        self.call(
            "POST",
            "/execute/sync",
            serde_json::json!({ "script": script, "args": [] }),
        )
    }

    /// Presses each character of `keys` in turn (key down, key up) on the focused page, as a
    /// keyboard would; `\u{E00C}` is Escape (WebDriver key codes).
    pub fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for c in keys.chars() {
            actions.push(serde_json::json!({ "type": "keyDown", "value": c.to_string() }));
            actions.push(serde_json::json!({ "type": "keyUp", "value": c.to_string() }));
        }
        self.call(
            "POST",
            "/actions",
            serde_json::json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] }),
        );
    }

    /// Waits until `script` (a function body) returns true; panics with the page after 30 s.
    pub fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.eval(script) != serde_json::json!(true) {
            assert!(
                Instant::now() < deadline,
                "{what}: not reached; the page:\n{}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub fn screenshot(&self, path: &std::path::Path) {
        use std::io::Write as _;
        let b64 = self.call("GET", "/screenshot", serde_json::json!({}));
        let data = base64_decode(b64.as_str().unwrap_or_default());
        let mut file = std::fs::File::create(path).expect("create screenshot");
        file.write_all(&data).expect("write screenshot");
    }

    pub fn source(&self) -> String {
        self.call("GET", "/source", serde_json::json!({}))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _closed = std::panic::catch_unwind(|| {
            webdriver(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                &serde_json::Value::Null,
            )
        });
        let _killed = self._driver.kill();
        let _reaped = self._driver.wait();
    }
}

/// Standard base64 (WebDriver screenshots), without a dependency for one decoder.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// `POST path` with a JSON body, a cookie and its CSRF token; status and body.
pub fn post_json(port: u16, path: &str, cookie: &str, csrf: &str, body: &str) -> (u16, String) {
    let (status, body) = request(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\n{cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Type: application/json"
        ),
        body.as_bytes(),
    );
    (status, String::from_utf8_lossy(&body).into_owned())
}
