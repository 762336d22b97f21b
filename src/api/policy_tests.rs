//! The route × role table against the real server: every route of `api::router`, called as
//! anonymous, as each role and as each kind of key, answers as `policy::POLICY` says; a route
//! in the source without a row fails here.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::policy::{Access, POLICY, allows, rule_for};
use super::*;
use crate::auth::{Auth, Identity, Role, Scope};
use crate::config::{AuthSettings, IncidentsConfig};
use crate::geo::CityHandle;
use crate::incidents::Intake;
use crate::queue::FrameQueue;
use crate::registry::test_db::TestDb;
use crate::registry::{Registry, SystemClock};

const PASSWORD: &str = "correct horse battery";

/// Every route path written in `src/api/*.rs`: `.route("…"` calls and the appeal verbs table.
fn routes_in_source() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/api").flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("policy_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        for line in text.lines() {
            let t = line.trim_start();
            let literal = if let Some(rest) = t.strip_prefix(".route(\"") {
                rest.split('"').next()
            } else if t.starts_with("(\"") && t.contains("\"/api/") {
                t.split('"').nth(3)
            } else {
                None
            };
            if let Some(route) = literal {
                found.push(route.to_owned());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn every_route_in_the_source_has_a_policy_row_and_every_row_a_route() {
    let routes = routes_in_source();
    assert!(routes.len() >= 30, "found only {routes:?}");
    for route in &routes {
        assert!(
            POLICY.iter().any(|r| r.path == route),
            "route `{route}` has no row in api/policy.rs POLICY: give it one"
        );
    }
    for rule in POLICY {
        assert!(
            routes.iter().any(|r| r == rule.path),
            "POLICY row {} {} names no route",
            rule.method,
            rule.path
        );
    }
    assert!(rule_for(&axum::http::Method::DELETE, "/api/v1/appeals").is_none());
}

pub(super) struct Server {
    pub(super) addr: SocketAddr,
    pub(super) auth: Auth,
    pub(super) registry: Registry,
    _sensors: crate::sensors::SensorsStage,
    _telemetry: crate::telemetry::TelemetryStage,
    _db: TestDb,
}

async fn serve() -> Server {
    serve_on(&local_http(), AuthSettings::default()).await
}

fn local_http() -> crate::config::HttpSettings {
    crate::config::HttpSettings::new(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The whole router with these edge limits on a real port (default sign-in settings).
pub(super) async fn serve_with(http: &crate::config::HttpSettings) -> Server {
    serve_on(http, AuthSettings::default()).await
}

/// A node whose sign-in settings are `auth`, default edge limits.
async fn serve_with_auth(auth: AuthSettings) -> Server {
    serve_on(&local_http(), auth).await
}

/// The whole router with these edge limits and sign-in settings (with generous sign-in
/// limits) on a real port, the registry on a database of its own, the demo city and a sensor
/// stage on the test broker.
async fn serve_on(http: &crate::config::HttpSettings, auth: AuthSettings) -> Server {
    static CITY: OnceLock<Arc<CityHandle>> = OnceLock::new();
    let site_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
    let city = CITY.get_or_init(|| Arc::new(CityHandle::load(&site_dir).expect("demo city")));
    let db = TestDb::create().await;
    let registry = Registry::connect(&db.url, Arc::new(SystemClock))
        .await
        .expect("registry");
    let settings = AuthSettings {
        attempts_per_account: 1000,
        attempts_per_address: 10_000,
        ..auth
    };
    let auth = Auth::new(registry.pool().clone(), settings);
    let site = crate::config::load_site(&site_dir).expect("demo site");
    let metrics = Arc::new(crate::obs::Metrics::new());
    let queue = Arc::new(FrameQueue::new(8));
    let ingest = Arc::new(
        crate::ingest::Ingest::new(site.ingest.clone(), queue, metrics.clone(), true)
            .expect("ingest"),
    );
    // The demo's sensor stage on the test broker, under a client id and topics of its own.
    let mut sensor_settings = site.sensors.clone().expect("the demo site has [sensors]");
    let tag = rand::random::<u64>();
    sensor_settings.mqtt.client_id = format!("sitcenter-policy-test-{tag:016x}");
    sensor_settings.mqtt.session_expiry = std::time::Duration::from_secs(60);
    if let Ok(addr) = std::env::var("SITCENTER_TEST_MQTT")
        && let Some((host, port)) = addr.split_once(':')
    {
        sensor_settings.mqtt.host = host.to_owned();
        sensor_settings.mqtt.port = port.parse().expect("SITCENTER_TEST_MQTT port");
    }
    sensor_settings.topic_prefix = format!("test/policy-{tag:016x}");
    sensor_settings.chirpstack = None;
    let sensors = crate::sensors::SensorsStage::start(
        &sensor_settings,
        &city.current(),
        registry.clone(),
        Intake::new(Arc::new(IncidentsConfig::default()), Arc::clone(city)),
        crate::obs::SensorMetrics::default(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("sensor stage");
    let mut telemetry_settings = crate::telemetry::tests::settings();
    telemetry_settings.wialon_listen = None;
    telemetry_settings.teltonika_listen = None;
    telemetry_settings.osmand_listen = None;
    let telemetry = crate::telemetry::TelemetryStage::start(
        &telemetry_settings,
        registry.pool().clone(),
        std::collections::HashMap::new(),
        crate::obs::TelemetryMetrics::new(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect("telemetry stage");
    let state = ApiState {
        sensors: Some(sensors.handle.clone()),
        telemetry: Some(telemetry.handle()),
        cameras: CamerasState::new(ingest, metrics, Arc::default(), &site, Arc::default()),
        events: EventsState {
            events: Arc::new(crate::events::RecentEvents::new(4)),
            detector: tokio::sync::watch::channel(None).1,
        },
        registry: Some(RegistryApiState {
            registry: registry.clone(),
            intake: Intake::new(Arc::new(IncidentsConfig::default()), Arc::clone(city)),
            open311: Arc::default(),
            auth: auth.clone(),
        }),
        session: Some(SessionState {
            auth: auth.clone(),
            secure_cookies: false,
        }),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router_with(state, http).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        addr,
        auth,
        registry,
        _sensors: sensors,
        _telemetry: telemetry,
        _db: db,
    }
}

/// A plain HTTP/1.1 exchange: status and body.
pub(super) async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.expect("write");
    // An event stream (`/api/stream`) never ends: its head is the answer.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = stream.read(&mut chunk).await.expect("read");
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n")
            && String::from_utf8_lossy(&raw[..end])
                .to_ascii_lowercase()
                .contains("content-type: text/event-stream")
        {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// Someone calling: the headers they send and who the server should take them for.
struct Caller {
    label: String,
    headers: Vec<String>,
    identity: Option<Identity>,
}

async fn callers(server: &Server) -> Vec<Caller> {
    let mut out = vec![Caller {
        label: "anonymous".into(),
        headers: Vec::new(),
        identity: None,
    }];
    for role in Role::ALL {
        let name = format!("test-{}", role.as_str());
        server
            .auth
            .add_user("test", &name, "", &[*role], PASSWORD)
            .await
            .expect("user");
        let session = server
            .auth
            .sign_in(&name, PASSWORD, [127, 0, 0, 1].into())
            .await
            .expect("sign in");
        out.push(Caller {
            label: role.as_str().to_owned(),
            headers: vec![
                format!("Cookie: sitcenter_session={}", session.token),
                format!("X-CSRF-Token: {}", session.csrf),
            ],
            identity: Some(session.identity),
        });
    }
    for scope in [Scope::Open311Write, Scope::EventsRead, Scope::MetricsRead] {
        let key = server
            .auth
            .add_key("test", scope.as_str(), &[scope])
            .await
            .expect("key");
        let identity = server.auth.key(&key).await.expect("lookup");
        out.push(Caller {
            label: format!("key {}", scope.as_str()),
            headers: vec![format!("Authorization: Bearer {key}")],
            identity,
        });
    }
    out
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "nope")
        .replace("{number}", "109-2026-999999")
        .replace("{name}", "nobody")
        .replace("{file}", "services.json")
}

#[tokio::test]
async fn every_route_answers_each_role_and_key_as_the_table_says() {
    let server = serve().await;
    let callers = callers(&server).await;
    let mut wrong = Vec::new();
    for rule in POLICY {
        // Open311 POST is decided by its handler (keys in the form body), logout ends the
        // session the other rows use: both are tested on their own below.
        if rule.access == Access::Open311Post || rule.path == "/api/auth/logout" {
            continue;
        }
        for caller in &callers {
            let mut headers = caller.headers.clone();
            headers.push("Content-Type: application/json".into());
            let (status, body) = http(
                server.addr,
                rule.method.as_str(),
                &concrete(rule.path),
                &headers,
                "{}",
            )
            .await;
            let refused = status == 401 || status == 403;
            let expected_refused = !allows(rule.access, caller.identity.as_ref());
            if refused != expected_refused || status >= 500 {
                wrong.push(format!(
                    "{} {} as {}: {status} {body}",
                    rule.method, rule.path, caller.label
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}\n", wrong.join("\n"));
}

#[tokio::test]
async fn cookie_writes_need_the_csrf_token_and_this_origin_and_the_actor_is_the_user() {
    let server = serve().await;
    server
        .auth
        .add_user("test", "aigerim", "", &[Role::Inspector], PASSWORD)
        .await
        .expect("user");
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/auth/login",
        &["Content-Type: application/json".into()],
        &format!(r#"{{"user":"aigerim","password":"{PASSWORD}"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let me: serde_json::Value = serde_json::from_str(&body).expect("json");
    let csrf = me["csrf"].as_str().expect("csrf").to_owned();
    let session = server
        .auth
        .sign_in("aigerim", PASSWORD, [127, 0, 0, 1].into())
        .await
        .expect("second session");
    let cookie = format!("Cookie: sitcenter_session={}", session.token);
    let report = r#"{"category":"open_manhole","lat":51.128,"lon":71.43,"description":"open"}"#;
    let json = "Content-Type: application/json".to_owned();
    let (status, _) = http(
        server.addr,
        "POST",
        "/api/v1/appeals",
        &[cookie.clone(), json.clone()],
        report,
    )
    .await;
    assert_eq!(status, 403, "no CSRF token");
    let (status, _) = http(
        server.addr,
        "POST",
        "/api/v1/appeals",
        &[
            cookie.clone(),
            json.clone(),
            format!("X-CSRF-Token: {csrf}"),
        ],
        report,
    )
    .await;
    assert_eq!(status, 403, "another session's CSRF token");
    let token = format!("X-CSRF-Token: {}", session.csrf);
    let (status, _) = http(
        server.addr,
        "POST",
        "/api/v1/appeals",
        &[
            cookie.clone(),
            json.clone(),
            token.clone(),
            "Origin: https://evil.example".into(),
        ],
        report,
    )
    .await;
    assert_eq!(status, 403, "foreign origin");
    let with_actor = report.replace("\"open\"}", "\"open\",\"actor\":\"someone-else\"}");
    let (status, _) = http(
        server.addr,
        "POST",
        "/api/v1/appeals",
        &[cookie.clone(), json.clone(), token.clone()],
        &with_actor,
    )
    .await;
    assert_eq!(status, 400, "an actor field is refused, not used");
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/v1/appeals",
        &[cookie.clone(), json.clone(), token.clone()],
        report,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let number = serde_json::from_str::<serde_json::Value>(&body).expect("json")["number"]
        .as_str()
        .expect("number")
        .to_owned();
    let (_, timeline) = http(
        server.addr,
        "GET",
        &format!("/api/v1/appeals/{number}/timeline"),
        std::slice::from_ref(&cookie),
        "",
    )
    .await;
    assert!(
        timeline.contains("\"actor\":\"user:aigerim\""),
        "{timeline}"
    );
    // An inspector may not close it.
    let (status, _) = http(
        server.addr,
        "POST",
        &format!("/api/v1/appeals/{number}/close"),
        &[cookie.clone(), json.clone(), token.clone()],
        r#"{"confirmed_by":"reporter"}"#,
    )
    .await;
    assert_eq!(status, 403);
    // After sign-out the cookie opens nothing.
    let (status, _) = http(
        server.addr,
        "POST",
        "/api/auth/logout",
        &[cookie.clone(), token.clone()],
        "",
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = http(server.addr, "GET", "/api/cameras", &[cookie], "").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn open311_posts_need_a_key_with_its_scope_and_record_the_key_not_the_citizen() {
    let server = serve().await;
    let writer = server
        .auth
        .add_key("test", "mayor-site", &[Scope::Open311Write])
        .await
        .expect("key");
    let reader = server
        .auth
        .add_key("test", "dashboard", &[Scope::EventsRead])
        .await
        .expect("key");
    let form = "Content-Type: application/x-www-form-urlencoded".to_owned();
    let request = "service_code=open_manhole&lat=51.128&long=71.43&email=citizen%40example.kz&description=open";
    let (status, _) = http(
        server.addr,
        "POST",
        "/open311/v2/requests.json",
        std::slice::from_ref(&form),
        request,
    )
    .await;
    assert_eq!(status, 403, "anonymous");
    let (status, _) = http(
        server.addr,
        "POST",
        "/open311/v2/requests.json",
        std::slice::from_ref(&form),
        &format!("{request}&api_key={reader}"),
    )
    .await;
    assert_eq!(status, 403, "a key without open311:write");
    let (status, body) = http(
        server.addr,
        "POST",
        "/open311/v2/requests.json",
        std::slice::from_ref(&form),
        &format!("{request}&api_key={writer}"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = http(
        server.addr,
        "POST",
        "/open311/v2/requests.json",
        &[form, format!("Authorization: Bearer {writer}")],
        &request.replace("51.128", "51.09"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, listing) = http(server.addr, "GET", "/open311/v2/requests.json", &[], "").await;
    assert!(!listing.contains("citizen@example.kz"), "{listing}");
    // The contact is kept for the roles that talk to the reporter, hidden from the others.
    let number =
        serde_json::from_str::<serde_json::Value>(&body).expect("json")[0]["service_request_id"]
            .as_str()
            .expect("number")
            .to_owned();
    let path = format!("/api/v1/appeals/{number}/evidence");
    for caller in callers(&server).await {
        let Some(Identity::User { roles, .. }) = &caller.identity else {
            continue;
        };
        let (status, evidence) = http(server.addr, "GET", &path, &caller.headers, "").await;
        assert_eq!(status, 200, "{}: {evidence}", caller.label);
        let sees = roles.contains(&Role::Inspector) || roles.contains(&Role::Supervisor);
        assert_eq!(
            evidence.contains("citizen@example.kz"),
            sees,
            "{}: {evidence}",
            caller.label
        );
    }
}

#[tokio::test]
async fn answers_carry_the_security_headers() {
    let server = serve().await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(
            format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                server.addr
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    for header in [
        "content-security-policy: default-src 'self'",
        "frame-ancestors 'none'",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
    ] {
        assert!(head.contains(header), "missing {header}:\n{head}");
    }
    assert!(!head.contains("<script>"), "no inline script in the page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_identity_header_is_believed_only_from_a_listed_proxy() {
    let proxied = |addresses: &[&str]| AuthSettings {
        proxy: Some(crate::config::ProxyIdentity {
            header: "x-remote-user".to_owned(),
            addresses: addresses.iter().map(|a| a.parse().expect("ip")).collect(),
        }),
        ..AuthSettings::default()
    };
    // The test connects from 127.0.0.1: a listed proxy.
    let server = serve_with_auth(proxied(&["127.0.0.1"])).await;
    server
        .auth
        .add_user(
            "test",
            "ines",
            "Ines",
            &[Role::Inspector],
            "a long enough password",
        )
        .await
        .expect("user");
    let as_ines = ["X-Remote-User: ines".to_owned()];
    let (status, body) = http(server.addr, "GET", "/api/auth/me", &as_ines, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ines\""), "{body}");
    // Roles are ours: an inspector named by the proxy still may not administer.
    let (status, _) = http(server.addr, "GET", "/api/admin/users", &as_ines, "").await;
    assert_eq!(status, 403);
    // A name we do not know (or a disabled user) is refused, not created.
    let (status, _) = http(
        server.addr,
        "GET",
        "/api/auth/me",
        &["X-Remote-User: mallory".to_owned()],
        "",
    )
    .await;
    assert_eq!(status, 401);
    // Its writes must say where they come from (the header rides on the browser).
    let language = r#"{"language":"kk"}"#;
    let json = "Content-Type: application/json".to_owned();
    let (status, _) = http(
        server.addr,
        "POST",
        "/api/auth/language",
        &[as_ines[0].clone(), json.clone()],
        language,
    )
    .await;
    assert_eq!(status, 403);
    let origin = format!("Origin: http://{}", server.addr);
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/auth/language",
        &[as_ines[0].clone(), json.clone(), origin],
        language,
    )
    .await;
    assert!(status < 300, "{status} {body}");

    // From an address that is not a listed proxy the header means nothing.
    let elsewhere = serve_with_auth(proxied(&["127.0.0.2"])).await;
    elsewhere
        .auth
        .add_user(
            "test",
            "ines",
            "Ines",
            &[Role::Inspector],
            "a long enough password",
        )
        .await
        .expect("user");
    let (status, _) = http(elsewhere.addr, "GET", "/api/auth/me", &as_ines, "").await;
    assert_eq!(status, 401);
}
