//! Hostile and careless input against the whole router on a real port with PostgreSQL: huge
//! and deeply nested bodies, invalid UTF-8, NUL bytes, wrong content types, extreme dates and
//! numbers, Open311 as real clients send it, rate limits, foreign Host names, and 1,000
//! concurrent identical reports. Every answer is checked: never a 5xx, always the API's own
//! error format and a message naming the field.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::policy_tests::{Server, http, serve_with};
use crate::auth::{Role, Scope};
use crate::config::HttpSettings;

const PASSWORD: &str = "correct horse battery";
/// A point inside the demo city (a district and a responsible body).
const LAT: &str = "51.1282";
const LON: &str = "71.4304";

fn settings() -> HttpSettings {
    HttpSettings::new(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// A signed-in supervisor's headers (cookie + CSRF token).
async fn supervisor(server: &Server) -> Vec<String> {
    let name = format!("sup-{:08x}", rand::random::<u32>());
    server
        .auth
        .add_user("test", &name, "", &[Role::Supervisor], PASSWORD)
        .await
        .expect("user");
    let session = server
        .auth
        .sign_in(&name, PASSWORD, [127, 0, 0, 1].into())
        .await
        .expect("sign in");
    vec![
        format!("Cookie: sitcenter_session={}", session.token),
        format!("X-CSRF-Token: {}", session.csrf),
    ]
}

async fn open311_key(server: &Server) -> String {
    server
        .auth
        .add_key("test", "portal", &[Scope::Open311Write])
        .await
        .expect("key")
}

fn with(headers: &[String], extra: &str) -> Vec<String> {
    let mut out = headers.to_vec();
    out.push(extra.to_owned());
    out
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The GeoReport v2 error format: a list of `{code, description}`.
fn georeport_error(body: &str) -> (u64, String) {
    let v = json(body);
    let first = &v.as_array().expect("a list of errors")[0];
    (
        first["code"].as_u64().expect("code"),
        first["description"]
            .as_str()
            .expect("description")
            .to_owned(),
    )
}

/// Sends raw bytes (the write may be cut short when the server answers early) and returns
/// the status line's code and the body.
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let mut request = head.as_bytes().to_vec();
    request.extend_from_slice(body);
    // Write while reading: the server may answer (413) before the body is sent.
    let writing = tokio::spawn(async move {
        let _cut_short = writer.write_all(&request).await;
        writer
    });
    let mut answer = Vec::new();
    let _reset_after_answer = reader.read_to_end(&mut answer).await;
    drop(writing.await);
    let text = String::from_utf8_lossy(&answer).into_owned();
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

#[tokio::test]
async fn ten_megabyte_bodies_deep_nesting_invalid_utf8_and_wrong_content_types_are_refused_without_a_5xx()
 {
    let server = serve_with(&settings()).await;
    let sup = supervisor(&server).await;
    let addr = server.addr;
    let cookie = sup.join("\r\n");
    let ten_mb = vec![b'a'; 10 * 1024 * 1024];
    let head = |path: &str, content_type: &str, len: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{cookie}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let mut statuses = Vec::new();
    let (status, body) = raw(
        addr,
        &head("/api/v1/appeals", "application/json", ten_mb.len()),
        &ten_mb,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(json(&body)["error"]["code"], "too_large", "{body}");
    statuses.push(status);
    let (status, body) = raw(
        addr,
        &head(
            "/open311/v2/requests.json",
            "application/x-www-form-urlencoded",
            ten_mb.len(),
        ),
        &ten_mb,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(georeport_error(&body).0, 413);
    statuses.push(status);
    let (status, body) = raw(
        addr,
        &head(
            "/api/v1/appeals/109-2026-000001/comment",
            "application/json",
            ten_mb.len(),
        ),
        &ten_mb,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    statuses.push(status);

    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (status, body) = raw(
        addr,
        &head("/api/v1/appeals", "application/json", deep.len()),
        deep.as_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    statuses.push(status);
    let nested = format!(
        r#"{{"category":"illegal_dump","lat":{LAT},"lon":{LON},"evidence":[{{"kind":"note","data":{}1{}}}]}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let (status, body) = raw(
        addr,
        &head("/api/v1/appeals", "application/json", nested.len()),
        nested.as_bytes(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    statuses.push(status);

    let mut invalid =
        br#"{"category":"illegal_dump","lat":51.1282,"lon":71.4304,"description":""#.to_vec();
    invalid.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid.extend_from_slice(b"\"}");
    let (status, body) = raw(
        addr,
        &head("/api/v1/appeals", "application/json", invalid.len()),
        &invalid,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    statuses.push(status);
    let form: &[u8] = b"service_code=%ff%fe&x=\xff";
    let (status, body) = raw(
        addr,
        &head(
            "/open311/v2/requests.json",
            "application/x-www-form-urlencoded",
            form.len(),
        ),
        form,
    )
    .await;
    assert!(
        status == 400 || status == 403 || status == 404,
        "{status} {body}"
    );
    statuses.push(status);

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "image/png",
    ] {
        let body = format!(r#"{{"category":"illegal_dump","lat":{LAT},"lon":{LON}}}"#);
        let (status, answer) = raw(
            addr,
            &head("/api/v1/appeals", content_type, body.len()),
            body.as_bytes(),
        )
        .await;
        assert_eq!(status, 415, "{content_type}: {answer}");
        assert_eq!(json(&answer)["error"]["code"], "unsupported_media_type");
        statuses.push(status);
    }
    assert!(statuses.iter().all(|s| *s < 500), "{statuses:?}");
    // The server still answers.
    let (status, _) = http(addr, "GET", "/health", &[], "").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn nul_bytes_over_long_fields_extreme_dates_and_numbers_answer_400_naming_the_field() {
    let server = serve_with(&settings()).await;
    let sup = with(&supervisor(&server).await, "Content-Type: application/json");
    let post = |body: String| {
        let sup = sup.clone();
        async move { http(server.addr, "POST", "/api/v1/appeals", &sup, &body).await }
    };
    let obs =
        |extra: &str| format!(r#"{{"category":"illegal_dump","lat":{LAT},"lon":{LON}{extra}}}"#);
    let long = "я".repeat(4001);
    let cases: Vec<(String, &str)> = vec![
        (
            obs(r#","description":"a\u0000b""#),
            "`description` contains a NUL byte",
        ),
        (
            obs(r#","address":"\u0000""#),
            "`address` contains a NUL byte",
        ),
        (
            obs(r#","source_ref":"x\u0000""#),
            "`source_ref` contains a NUL byte",
        ),
        (
            obs(r#","evidence":[{"kind":"note","data":{"k":"\u0000"}}]"#),
            "`evidence[0].data` contains a NUL byte",
        ),
        (
            obs(&format!(r#","description":"{long}""#)),
            "`description` is 4001 characters long",
        ),
        (
            obs(r#","observed_at":"0001-01-01T00:00:00Z""#),
            "`observed_at` must be within",
        ),
        (
            obs(r#","observed_at":"9999-12-31T23:59:59Z""#),
            "`observed_at` must be within",
        ),
        (
            obs(r#","observed_at":"2031-01-01T00:00:00Z""#),
            "`observed_at` must be within",
        ),
        (
            obs(r#","observed_at":"+262143-12-31T23:59:59Z""#),
            "observed_at",
        ),
        (obs(r#","uncertainty_m":-1"#), "`uncertainty_m` must be 0"),
        (
            obs(r#","uncertainty_m":1e300"#),
            "`uncertainty_m` must be 0",
        ),
        (
            r#"{"category":"illegal_dump","lat":0,"lon":0}"#.to_owned(),
            "outside the city",
        ),
        (
            r#"{"category":"illegal_dump","lat":1e308,"lon":-1e308}"#.to_owned(),
            "not a WGS84 position",
        ),
        (
            r#"{"category":"illegal_dump","lat":51.1282,"lon":71.4304,"lat":99}"#.to_owned(),
            "duplicate field",
        ),
    ];
    let mut wrong = Vec::new();
    for (body, expected) in &cases {
        let (status, answer) = post(body.clone()).await;
        if status != 400 || !answer.contains(expected) {
            let shown: String = body.chars().take(120).collect();
            wrong.push(format!("{shown}: {status} {answer}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}\n", wrong.join("\n"));

    // Lifecycle notes and searches.
    let (status, answer) = post(obs("")).await;
    assert_eq!(status, 201, "{answer}");
    let number = json(&answer)["number"].as_str().expect("number").to_owned();
    let (status, answer) = http(
        server.addr,
        "POST",
        &format!("/api/v1/appeals/{number}/comment"),
        &sup,
        r#"{"note":"fenced\u0000"}"#,
    )
    .await;
    assert!(
        status == 400 && answer.contains("`note` contains a NUL byte"),
        "{status} {answer}"
    );
    // The per-appeal lists are paged too.
    for list in ["timeline", "evidence"] {
        let path = format!("/api/v1/appeals/{number}/{list}");
        let (status, answer) = http(server.addr, "GET", &format!("{path}?limit=1"), &sup, "").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(json(&answer).as_array().map(Vec::len), Some(1), "{answer}");
        for query in ["limit=0", "limit=501", "offset=-1", "page=2"] {
            let (status, answer) =
                http(server.addr, "GET", &format!("{path}?{query}"), &sup, "").await;
            assert_eq!(status, 400, "{list}?{query}: {answer}");
        }
    }
    for (query, expected) in [
        ("limit=-1", "`limit` must be 1–500"),
        ("limit=1000000000000", "`limit` must be 1–500"),
        ("offset=-1", "`offset` must be 0"),
        ("text=a%00b", "`text` contains a NUL byte"),
        (
            "registered_from=0001-01-01T00:00:00Z",
            "`registered_from` must be a date",
        ),
        ("limit=99999999999999999999999", "query string"),
    ] {
        let (status, answer) = http(
            server.addr,
            "GET",
            &format!("/api/v1/appeals?{query}"),
            &sup,
            "",
        )
        .await;
        assert!(
            status == 400 && answer.contains(expected),
            "{query}: {status} {answer}"
        );
    }
    let (status, answer) = http(server.addr, "GET", "/api/v1/appeals/109-2026%00", &sup, "").await;
    assert!(status == 400 && answer.contains("NUL"), "{status} {answer}");
}

#[tokio::test]
async fn percent_and_underscore_in_a_text_search_are_literal() {
    let server = serve_with(&settings()).await;
    let sup = with(&supervisor(&server).await, "Content-Type: application/json");
    for (i, description) in [
        "rubbish 100% blocking",
        "rubbish 1000 blocking",
        "pipe_a",
        "pipeXa",
    ]
    .iter()
    .enumerate()
    {
        let lat = 51.12 + 0.003 * i as f64;
        let (status, answer) = http(
            server.addr,
            "POST",
            "/api/v1/appeals",
            &sup,
            &format!(r#"{{"category":"illegal_dump","lat":{lat},"lon":{LON},"description":"{description}"}}"#),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
    }
    let found = |text: &str| {
        let sup = sup.clone();
        let text = text.to_owned();
        async move {
            let (status, answer) = http(
                server.addr,
                "GET",
                &format!("/api/v1/appeals?text={text}"),
                &sup,
                "",
            )
            .await;
            assert_eq!(status, 200, "{answer}");
            json(&answer).as_array().expect("list").len()
        }
    };
    assert_eq!(found("100%25").await, 1);
    assert_eq!(found("pipe_a").await, 1);
    assert_eq!(found("%25").await, 1);
    assert_eq!(found("_").await, 1);
}

#[tokio::test]
async fn open311_as_real_clients_send_it_is_accepted_and_its_errors_are_in_the_spec_format() {
    let server = serve_with(&settings()).await;
    let key = open311_key(&server).await;
    let form = "application/x-www-form-urlencoded".to_owned();
    let post = |query: String, body: String| {
        let headers = vec![format!("Content-Type: {form}")];
        async move {
            http(
                server.addr,
                "POST",
                &format!("/open311/v2/requests.json{query}"),
                &headers,
                &body,
            )
            .await
        }
    };
    let report = |extra: &str| format!("service_code=illegal_dump&lat={LAT}&long={LON}{extra}");
    // `api_key` in the query string, an empty jurisdiction_id.
    let (status, answer) = post(format!("?api_key={key}"), report("&jurisdiction_id=")).await;
    assert_eq!(status, 201, "{answer}");
    let number = json(&answer)[0]["service_request_id"]
        .as_str()
        .expect("number")
        .to_owned();
    // Field errors in the GeoReport format, naming the field.
    for (extra, expected) in [
        ("&description=a%00b", "`description` contains a NUL byte"),
        ("&first_name=%00", "`first_name` contains a NUL byte"),
        (
            "&media_url=javascript:alert(1)",
            "`media_url` must be an http or https URL",
        ),
        (
            "&media_url=file:///etc/passwd",
            "`media_url` must be an http or https URL",
        ),
    ] {
        let (status, answer) = post(format!("?api_key={key}"), report(extra)).await;
        assert_eq!(status, 400, "{extra}: {answer}");
        let (code, description) = georeport_error(&answer);
        assert_eq!(code, 400);
        assert!(description.contains(expected), "{extra}: {description}");
    }
    let long = format!("&address_string={}", "x".repeat(501));
    let (status, answer) = post(format!("?api_key={key}"), report(&long)).await;
    assert!(
        status == 400 && answer.contains("`address_string` is 501"),
        "{answer}"
    );
    let (status, answer) = post(
        format!("?api_key={key}"),
        "service_code=illegal_dump&lat=0&long=0".into(),
    )
    .await;
    assert!(
        status == 400 && answer.contains("outside the city"),
        "{answer}"
    );

    let get = |query: &str| {
        let query = query.to_owned();
        async move {
            http(
                server.addr,
                "GET",
                &format!("/open311/v2/requests.json?{query}"),
                &[],
                "",
            )
            .await
        }
    };
    for query in [
        "status=open,closed",
        "status=open",
        "service_code=illegal_dump,open_manhole",
        "start_date=2026-01-01T00:00Z&end_date=2126-01-01T10:00%2B05:00",
        "start_date=2026&end_date=2126-03",
        "end_date=9999-12-31",
        "jurisdiction_id=",
    ] {
        let (status, answer) = get(query).await;
        assert_eq!(status, 200, "{query}: {answer}");
        assert!(json(&answer).is_array(), "{query}: {answer}");
    }
    let (_, answer) = get("service_code=illegal_dump,open_manhole&status=open,closed").await;
    assert_eq!(json(&answer).as_array().map(Vec::len), Some(1), "{answer}");
    let (_, answer) = get("service_code=open_manhole").await;
    assert_eq!(json(&answer).as_array().map(Vec::len), Some(0), "{answer}");
    // One id repeated 400 times answers once; 2,000 times is past the target limit (414 in
    // the spec's format); more than 50 distinct ids are refused.
    let repeated = vec![number.as_str(); 400].join(",");
    let (status, answer) = get(&format!("service_request_id={repeated}")).await;
    assert_eq!(status, 200);
    assert_eq!(json(&answer).as_array().map(Vec::len), Some(1), "{answer}");
    let repeated = vec![number.as_str(); 2000].join(",");
    let (status, answer) = get(&format!("service_request_id={repeated}")).await;
    assert_eq!(status, 414);
    assert_eq!(georeport_error(&answer).0, 414);
    let many: Vec<String> = (0..51).map(|i| format!("109-2026-{i:06}")).collect();
    let (status, answer) = get(&format!("service_request_id={}", many.join(","))).await;
    assert_eq!(status, 400, "{answer}");
    assert!(georeport_error(&answer).1.contains("more than 50"));
    for (query, field) in [
        ("status=pending", "status"),
        ("start_date=yesterday", "start_date"),
        ("start_date=0001-01-01", "start_date"),
        ("end_date=0001-01-01", "end_date"),
    ] {
        let (status, answer) = get(query).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(georeport_error(&answer).1.contains(field), "{answer}");
    }
    // Unknown paths, in JSON and XML.
    let (status, answer) = http(server.addr, "GET", "/open311/v2/nothing/here.json", &[], "").await;
    assert_eq!(status, 404);
    assert_eq!(georeport_error(&answer).0, 404);
    let (status, answer) = http(server.addr, "GET", "/open311/v2/nothing/here.xml", &[], "").await;
    assert_eq!(status, 404);
    assert!(
        answer.contains("<errors><error><code>404</code>"),
        "{answer}"
    );
    let (status, answer) = http(server.addr, "GET", "/api/v1/nothing", &[], "").await;
    assert_eq!(status, 404);
    assert_eq!(json(&answer)["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_foreign_host_name_is_refused_and_a_listed_one_served() {
    let mut http_settings = settings();
    http_settings.allowed_hosts = vec!["sitcenter.astana.kz".into()];
    let server = serve_with(&http_settings).await;
    let ask = |host: &str| {
        let head = format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        async move { raw(server.addr, &head, b"").await }
    };
    assert_eq!(ask("rebind.attacker.example").await.0, 421);
    assert_eq!(ask("rebind.attacker.example:8080").await.0, 421);
    assert_eq!(ask("sitcenter.astana.kz").await.0, 200);
    assert_eq!(ask("localhost:8080").await.0, 200);
    assert_eq!(ask(&server.addr.to_string()).await.0, 200);
}

#[tokio::test]
async fn writes_are_limited_per_address_and_per_key_and_reads_are_not() {
    let mut http_settings = settings();
    http_settings.writes_per_minute_per_address = 1000;
    http_settings.writes_per_minute_per_key = 3;
    let server = serve_with(&http_settings).await;
    let key = open311_key(&server).await;
    let headers = vec!["Content-Type: application/x-www-form-urlencoded".to_owned()];
    let mut statuses = Vec::new();
    for i in 0..5 {
        let lat = 51.12 + 0.003 * f64::from(i);
        let (status, answer) = http(
            server.addr,
            "POST",
            &format!("/open311/v2/requests.json?api_key={key}"),
            &headers,
            &format!("service_code=illegal_dump&lat={lat}&long={LON}"),
        )
        .await;
        if status == 429 {
            assert_eq!(georeport_error(&answer).0, 429);
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [201, 201, 201, 429, 429]);
    for _ in 0..10 {
        assert_eq!(
            http(server.addr, "GET", "/open311/v2/services.json", &[], "")
                .await
                .0,
            200
        );
    }

    let mut http_settings = settings();
    http_settings.writes_per_minute_per_address = 2;
    let server = serve_with(&http_settings).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let body = r#"{"user":"nobody","password":"wrong password here"}"#;
        let (status, _) = http(
            server.addr,
            "POST",
            "/api/auth/login",
            &["Content-Type: application/json".into()],
            body,
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(statuses[2], 429, "{statuses:?}");
}

#[tokio::test]
async fn a_thousand_concurrent_identical_reports_make_one_appeal_and_numbers_stay_gap_free() {
    let mut http_settings = settings();
    http_settings.writes_per_minute_per_address = 100_000;
    http_settings.writes_per_minute_per_key = 100_000;
    let server = serve_with(&http_settings).await;
    let key = open311_key(&server).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let addr = server.addr;
        let key = key.clone();
        tasks.spawn(async move {
            http(
                addr,
                "POST",
                &format!("/open311/v2/requests.json?api_key={key}"),
                &["Content-Type: application/x-www-form-urlencoded".into()],
                &format!("service_code=illegal_dump&lat={LAT}&long={LON}&description=same+heap"),
            )
            .await
        });
    }
    let mut numbers = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (status, answer) = done.expect("task");
        if status == 201 {
            let number = json(&answer)[0]["service_request_id"]
                .as_str()
                .expect("number")
                .to_owned();
            *numbers.entry(number).or_default() += 1;
        } else {
            failures.push(format!("{status} {answer}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    assert_eq!(numbers.values().sum::<usize>(), 1000);
    // More appeals elsewhere: registration numbers run 1, 2, 3, … without a gap.
    for i in 1..=5 {
        let lat = 51.1282 - 0.004 * f64::from(i);
        let (status, answer) = http(
            server.addr,
            "POST",
            &format!("/open311/v2/requests.json?api_key={key}"),
            &["Content-Type: application/x-www-form-urlencoded".into()],
            &format!("service_code=illegal_dump&lat={lat}&long={LON}"),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
    }
    let filter = crate::registry::AppealFilter::default();
    let mut seqs: Vec<u32> = server
        .registry
        .search(&filter)
        .await
        .expect("search")
        .iter()
        .map(|a| {
            a.number
                .rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("seq")
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=6).collect::<Vec<u32>>());
}

/// schemathesis (installed by `scripts/bootstrap.sh` into `$SITCENTER_HOME/schemathesis-venv`).
fn schemathesis() -> std::path::PathBuf {
    let home = std::env::var_os("SITCENTER_HOME").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_default();
            std::path::Path::new(&home).join(".local/share/sitcenter")
        },
        std::path::PathBuf::from,
    );
    home.join("schemathesis-venv/bin/st")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_driven_run_over_the_openapi_document_finds_no_5xx_and_answers_that_conform() {
    let st = schemathesis();
    assert!(
        st.exists(),
        "{} is missing: run scripts/bootstrap.sh (it installs schemathesis)",
        st.display()
    );
    let mut http_settings = settings();
    http_settings.writes_per_minute_per_address = 1_000_000;
    http_settings.writes_per_minute_per_key = 1_000_000;
    let server = serve_with(&http_settings).await;
    let sup = supervisor(&server).await;
    let base = format!("http://{}", server.addr);
    let mut command = tokio::process::Command::new(&st);
    command
        .arg("run")
        .arg(format!("{base}/api/v1/openapi.json"))
        .args(["--url", &base])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
        ])
        .args(["--max-examples", "30", "--seed", "13", "--workers", "1"])
        .args(["--max-time", "40", "--request-timeout", "10"])
        .args(["--generation-allow-x00", "true"])
        .env("NO_COLOR", "1");
    for header in &sup {
        command.args(["-H", header]);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
        .await
        .expect("schemathesis ended within 120 s")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("passed"), "{stdout}");
    for line in stdout
        .lines()
        .filter(|l| l.contains("generated") || l.contains("Scenarios"))
    {
        eprintln!("schemathesis: {}", line.trim());
    }
}
