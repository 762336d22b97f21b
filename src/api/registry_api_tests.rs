//! API tests: the real router on a real port, the real registry on a per-test database, and a
//! plain HTTP/1.1 client written on a TCP socket (what a 311 portal would send).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::registry_api::{RegistryApiState, router};
use crate::config::IncidentsConfig;
use crate::config::Open311Config;
use crate::geo::CityHandle;
use crate::incidents::Intake;
use crate::registry::Registry;
use crate::registry::SystemClock;
use crate::registry::test_db::TestDb;

struct Server {
    addr: SocketAddr,
    _db: TestDb,
}

async fn serve(open311: Open311Config) -> Server {
    static CITY: OnceLock<Arc<CityHandle>> = OnceLock::new();
    let city = CITY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
        Arc::new(CityHandle::load(&dir).expect("demo city"))
    });
    let db = TestDb::create().await;
    let registry = Registry::connect(&db.url, Arc::new(SystemClock))
        .await
        .expect("registry");
    let mut open311 = open311;
    if open311.api_keys.is_empty() {
        open311.api_keys.push(TEST_KEY.into());
    }
    let auth = crate::auth::Auth::new(registry.pool().clone(), Default::default());
    let state = RegistryApiState {
        registry,
        intake: Intake::new(Arc::new(IncidentsConfig::default()), Arc::clone(city)),
        open311: Arc::new(open311),
        auth,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // These tests exercise the handlers; the policy layer in front of them is tested in
    // `policy_tests.rs`. The appeals API acts as a signed-in supervisor.
    let app = router(state).layer(axum::middleware::from_fn(
        |mut request: axum::extract::Request, next: axum::middleware::Next| async move {
            if request.uri().path().starts_with("/api/v1/") {
                request
                    .extensions_mut()
                    .insert(crate::auth::Identity::User {
                        id: 1,
                        name: "operator-12".into(),
                        roles: vec![crate::auth::Role::Supervisor],
                        language: "ru".into(),
                        csrf: String::new(),
                    });
            }
            next.run(request).await
        },
    ));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server { addr, _db: db }
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// The Open311 key the servers of these tests accept (unless a test configures its own).
const TEST_KEY: &str = "test-portal-key";

/// A plain HTTP/1.1 exchange over TCP (`Connection: close`, body read to EOF). Open311
/// POSTs without an `api_key` get the test key added.
async fn http(addr: SocketAddr, method: &str, path: &str, content_type: &str, body: &str) -> Reply {
    let keyed;
    let body = if method == "POST" && path.starts_with("/open311/") && !body.contains("api_key=") {
        keyed = format!("{body}&api_key={TEST_KEY}");
        keyed.as_str()
    } else {
        body
    };
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("utf-8");
    let (head, rest) = text.split_once("\r\n\r\n").expect("headers end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let body = if header("transfer-encoding").eq_ignore_ascii_case("chunked") {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        rest.to_owned()
    };
    Reply {
        status,
        content_type: header("content-type"),
        body,
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[tokio::test]
async fn an_open311_request_posted_with_a_plain_http_client_reads_back_through_get_with_the_spec_field_names()
 {
    let server = serve(Open311Config::default()).await;
    let body = form(&[
        ("service_code", "illegal_dump"),
        ("lat", "51.1282"),
        ("long", "71.4304"),
        ("address_string", "Nurzhol Blvd 8, Astana"),
        (
            "description",
            "Construction waste dumped behind the bus stop",
        ),
        ("email", "resident@example.kz"),
        ("first_name", "Aigerim"),
        ("media_url", "https://photos.example.kz/dump-1.jpg"),
        ("attribute[landmark]", "bus stop Baiterek"),
    ]);
    let posted = http(
        server.addr,
        "POST",
        "/open311/v2/requests.json",
        FORM,
        &body,
    )
    .await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    let posted = posted.json();
    let id = posted[0]["service_request_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let token = posted[0]["token"].as_str().expect("token").to_owned();
    assert!(
        id.starts_with("109-") && id.len() == "109-2026-000001".len(),
        "{id}"
    );
    assert!(
        posted[0]["service_notice"]
            .as_str()
            .is_some_and(|n| n.contains("Akimat"))
    );

    let got = http(
        server.addr,
        "GET",
        &format!("/open311/v2/requests/{id}.json"),
        FORM,
        "",
    )
    .await;
    assert_eq!(got.status, 200);
    assert!(got.content_type.starts_with("application/json"));
    let r = &got.json()[0];
    assert_eq!(r["service_request_id"], id.as_str());
    assert_eq!(r["status"], "open");
    assert_eq!(r["service_code"], "illegal_dump");
    assert_eq!(r["service_name"], "Spontaneous (illegal) dump");
    assert_eq!(r["address"], "Nurzhol Blvd 8, Astana");
    assert_eq!(r["lat"], 51.1282);
    assert_eq!(r["long"], 71.4304);
    assert_eq!(r["media_url"], "https://photos.example.kz/dump-1.jpg");
    assert_eq!(r["agency_responsible"], "Akimat of Yesil district");
    assert!(
        r["description"]
            .as_str()
            .is_some_and(|d| d.contains("bus stop Baiterek"))
    );
    for field in [
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "status_notes",
    ] {
        assert!(r[field].is_string(), "{field} missing: {r}");
    }

    let xml = http(
        server.addr,
        "GET",
        &format!("/open311/v2/requests/{id}.xml"),
        FORM,
        "",
    )
    .await;
    assert_eq!(xml.status, 200);
    assert!(xml.content_type.starts_with("text/xml"));
    assert!(xml.body.starts_with("<?xml") && xml.body.contains("<service_requests><request>"));
    assert!(
        xml.body
            .contains(&format!("<service_request_id>{id}</service_request_id>")),
        "{}",
        xml.body
    );
    assert!(xml.body.contains("<long>71.4304</long>"));

    let by_token = http(
        server.addr,
        "GET",
        &format!("/open311/v2/tokens/{token}.json"),
        FORM,
        "",
    )
    .await;
    assert_eq!(by_token.json()[0]["service_request_id"], id.as_str());

    let list = http(
        server.addr,
        "GET",
        "/open311/v2/requests.json?service_code=illegal_dump&status=open",
        FORM,
        "",
    )
    .await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        list.body
    );
    let by_ids = http(
        server.addr,
        "GET",
        &format!("/open311/v2/requests.json?service_request_id={id}"),
        FORM,
        "",
    )
    .await;
    assert_eq!(by_ids.json()[0]["service_request_id"], id.as_str());
    let closed = http(
        server.addr,
        "GET",
        "/open311/v2/requests.json?status=closed",
        FORM,
        "",
    )
    .await;
    assert_eq!(closed.json(), serde_json::json!([]));

    // A second resident reporting the same dump 30 m away joins the same request.
    let again = form(&[
        ("service_code", "illegal_dump"),
        ("lat", "51.1285"),
        ("long", "71.4302"),
    ]);
    let again = http(
        server.addr,
        "POST",
        "/open311/v2/requests.json",
        FORM,
        &again,
    )
    .await;
    assert_eq!(again.json()[0]["service_request_id"], id.as_str());
}

#[tokio::test]
async fn malformed_open311_requests_get_the_spec_error_format_with_a_clear_description() {
    let server = serve(Open311Config {
        jurisdiction_id: Some("astana.kz".into()),
        api_keys: vec![],
    })
    .await;
    let cases: &[(&str, &str, String, u16, &str)] = &[
        (
            "POST",
            "/open311/v2/requests.json",
            form(&[("lat", "51.13"), ("long", "71.43")]),
            400,
            "service_code is required",
        ),
        (
            "POST",
            "/open311/v2/requests.json",
            form(&[("service_code", "ufo"), ("lat", "51.13"), ("long", "71.43")]),
            404,
            "`ufo` is not a known service",
        ),
        (
            "POST",
            "/open311/v2/requests.json",
            form(&[
                ("service_code", "illegal_dump"),
                ("lat", "north"),
                ("long", "71.43"),
            ]),
            400,
            "lat `north` is not a number",
        ),
        (
            "POST",
            "/open311/v2/requests.json",
            form(&[("service_code", "illegal_dump"), ("lat", "51.13")]),
            400,
            "lat and long must be given together",
        ),
        (
            "POST",
            "/open311/v2/requests.json",
            form(&[
                ("service_code", "illegal_dump"),
                ("address_string", "Abay 1"),
            ]),
            400,
            "does not geocode address_string",
        ),
        (
            "POST",
            "/open311/v2/requests.json",
            form(&[
                ("service_code", "illegal_dump"),
                ("lat", "43.24"),
                ("long", "76.95"),
            ]),
            400,
            "outside the city",
        ),
        (
            "POST",
            "/open311/v2/requests.json",
            form(&[
                ("service_code", "illegal_dump"),
                ("lat", "51.13"),
                ("long", "71.43"),
                ("jurisdiction_id", "almaty.kz"),
            ]),
            404,
            "`almaty.kz` is not served here",
        ),
        (
            "POST",
            "/open311/v2/requests.json",
            form(&[
                ("service_code", "illegal_dump"),
                ("lat", "51.13"),
                ("long", "71.43"),
                ("media_url", "not a url"),
            ]),
            400,
            "`media_url` is not a URL",
        ),
        (
            "GET",
            "/open311/v2/requests/109-2026-999999.json",
            String::new(),
            404,
            "`109-2026-999999` not found",
        ),
        (
            "GET",
            "/open311/v2/requests.json?status=pending",
            String::new(),
            400,
            "status `pending` must be",
        ),
        (
            "GET",
            "/open311/v2/requests.json?start_date=yesterday",
            String::new(),
            400,
            "start_date `yesterday` is not a W3C datetime",
        ),
        (
            "GET",
            "/open311/v2/services/ufo.json",
            String::new(),
            404,
            "`ufo` is not a known service",
        ),
        (
            "GET",
            "/open311/v2/services.yaml",
            String::new(),
            400,
            "format `yaml` is not supported",
        ),
        (
            "GET",
            "/open311/v2/tokens/nope.json",
            String::new(),
            404,
            "token `nope` not found",
        ),
    ];
    for (method, path, body, status, text) in cases {
        let reply = http(server.addr, method, path, FORM, body).await;
        assert_eq!(reply.status, *status, "{method} {path}: {}", reply.body);
        let errors = reply.json();
        let error = &errors.as_array().expect("an array of errors")[0];
        assert_eq!(error["code"], *status, "{path}");
        let description = error["description"].as_str().expect("description");
        assert!(
            description.contains(text),
            "{method} {path}: `{description}` lacks `{text}`"
        );
    }
    let xml = http(
        server.addr,
        "POST",
        "/open311/v2/requests.xml",
        FORM,
        &form(&[("lat", "1")]),
    )
    .await;
    assert_eq!(xml.status, 400);
    assert!(xml.content_type.starts_with("text/xml"));
    assert!(xml.body.contains("<errors><error><code>400</code><description>service_code is required</description></error></errors>"), "{}", xml.body);
}

#[tokio::test]
async fn posting_needs_a_valid_api_key_when_keys_are_configured() {
    let server = serve(Open311Config {
        jurisdiction_id: None,
        api_keys: vec!["portal-key".into()],
    })
    .await;
    let base = [
        ("service_code", "road_damage"),
        ("lat", "51.16"),
        ("long", "71.45"),
    ];
    let none = http(
        server.addr,
        "POST",
        "/open311/v2/requests.json",
        FORM,
        &form(&base),
    )
    .await;
    assert_eq!(none.status, 403);
    assert!(
        none.json()[0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("api_key is not valid"))
    );
    let mut with_key = base.to_vec();
    with_key.push(("api_key", "portal-key"));
    let ok = http(
        server.addr,
        "POST",
        "/open311/v2/requests.json",
        FORM,
        &form(&with_key),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
}

#[tokio::test]
async fn services_and_service_definitions_are_listed_in_json_and_xml() {
    let server = serve(Open311Config::default()).await;
    let services = http(server.addr, "GET", "/open311/v2/services.json", FORM, "")
        .await
        .json();
    let codes: Vec<&str> = services
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["service_code"].as_str())
        .collect();
    assert!(
        codes.contains(&"open_manhole") && codes.contains(&"elevator_stuck"),
        "{codes:?}"
    );
    for s in services.as_array().expect("array") {
        for field in [
            "service_name",
            "description",
            "metadata",
            "type",
            "keywords",
            "group",
        ] {
            assert!(!s[field].is_null(), "{field} missing in {s}");
        }
    }
    let xml = http(server.addr, "GET", "/open311/v2/services.xml", FORM, "").await;
    assert!(
        xml.body.starts_with("<?xml")
            && xml.body.contains("<services><service>")
            && xml
                .body
                .contains("<service_code>open_manhole</service_code>"),
        "{}",
        xml.body
    );
    let def = http(
        server.addr,
        "GET",
        "/open311/v2/services/open_manhole.json",
        FORM,
        "",
    )
    .await
    .json();
    assert_eq!(def["service_code"], "open_manhole");
    assert_eq!(def["attributes"][0]["code"], "landmark");
    let def_xml = http(
        server.addr,
        "GET",
        "/open311/v2/services/open_manhole.xml",
        FORM,
        "",
    )
    .await;
    assert!(
        def_xml
            .body
            .contains("<service_definition><attributes><attribute>")
            && def_xml.body.contains("<code>landmark</code>")
            && def_xml
                .body
                .contains("<service_code>open_manhole</service_code></service_definition>"),
        "{}",
        def_xml.body
    );
}

#[tokio::test]
async fn the_ui_api_files_searches_and_walks_an_appeal_through_its_lifecycle() {
    let server = serve(Open311Config::default()).await;
    let a = server.addr;
    let openapi = http(a, "GET", "/api/v1/openapi.json", FORM, "")
        .await
        .json();
    assert_eq!(openapi["openapi"], "3.0.3");
    assert!(openapi["paths"]["/api/v1/appeals/{number}/{action}"].is_object());

    const JSON: &str = "application/json";
    let filed = http(a, "POST", "/api/v1/appeals", JSON,
        r#"{"category":"elevator_stuck","lat":51.17,"lon":71.41,"address":"Respublika Ave 5, entrance 2","source_ref":"call-777"}"#).await;
    assert_eq!(filed.status, 201, "{}", filed.body);
    let number = filed.json()["number"].as_str().expect("number").to_owned();

    let post = |verb: &'static str, body: &'static str| {
        let path = format!("/api/v1/appeals/{number}/{verb}");
        async move { http(a, "POST", &path, JSON, body).await }
    };
    let too_early = post("close", r#"{"confirmed_by":"reporter"}"#).await;
    assert_eq!(too_early.status, 409, "{}", too_early.body);
    assert!(
        too_early.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("awaiting_confirmation"))
    );
    let missing = post("reject", r#"{}"#).await;
    assert_eq!(missing.status, 400);
    assert_eq!(post("confirm", r#"{}"#).await.json()["status"], "confirmed");
    let unknown_body = post("assign", r#"{"body_id":"nobody"}"#).await;
    assert_eq!(unknown_body.status, 422);
    let assigned = post("assign", r#"{"body_id":"lift-001"}"#).await.json();
    assert_eq!(assigned["status"], "assigned");
    assert_eq!(assigned["body_name"], "Elevator service company 1");
    assert_eq!(
        post("resolve", r#"{"note":"released"}"#).await.json()["status"],
        "resolved"
    );
    assert_eq!(
        post("close", r#"{"confirmed_by":"inspector"}"#)
            .await
            .json()["status"],
        "closed"
    );

    let timeline = http(
        a,
        "GET",
        &format!("/api/v1/appeals/{number}/timeline"),
        FORM,
        "",
    )
    .await
    .json();
    let kinds: Vec<&str> = timeline
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "registered",
            "sent_for_confirmation",
            "evidence_added",
            "confirmed",
            "assigned",
            "resolved",
            "closed"
        ]
    );
    let one = http(a, "GET", &format!("/api/v1/appeals/{number}"), FORM, "")
        .await
        .json();
    assert_eq!(one["deadlines"][0]["stage"], "released");
    assert_eq!(one["deadlines"][0]["met"], true);

    let found = http(
        a,
        "GET",
        "/api/v1/appeals?status=closed&category=elevator_stuck",
        FORM,
        "",
    )
    .await
    .json();
    assert_eq!(found.as_array().map(Vec::len), Some(1));
    let bad = http(a, "GET", "/api/v1/appeals?colour=red", FORM, "").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("colour"))
    );
    let nope = http(a, "GET", "/api/v1/appeals/109-2026-999999", FORM, "").await;
    assert_eq!(nope.status, 404);
    let evidence = http(
        a,
        "GET",
        &format!("/api/v1/appeals/{number}/evidence"),
        FORM,
        "",
    )
    .await
    .json();
    assert_eq!(evidence[0]["source_ref"], "call-777");
}
