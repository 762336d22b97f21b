//! The operator UI end to end (issue 14): the real `sitcenter run` with PostgreSQL, driven in
//! headless Chromium with the keyboard only, beside plain HTTP calls of a second inspector.

mod common;

use std::path::Path;

use common::{
    Browser, TestDatabase, copy_city_layers, free_port, get_with, post_json, run_cli, sign_in,
    spawn, wait_listening,
};

const PASSWORD: &str = "ui e2e correct horse";

/// Starts a node on a site of its own (the demo city's layers, no cameras) with users
/// `insp1`, `insp2` (inspectors) and `sup` (supervisor); its HTTP port.
fn start(dir: &Path, db: &TestDatabase) -> (common::Process, u16) {
    let http_port = free_port();
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[site]\nname = \"ui\"\ncity = \"Astana\"\nbounds = {{ south = 51.05, west = 71.30, north = 51.25, east = 71.60 }}\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n{}",
            db.registry_toml()
        ),
    )
    .expect("site.toml");
    std::fs::write(dir.join("cameras.toml"), "").expect("cameras.toml");
    copy_city_layers(dir);
    let site = dir.to_str().expect("utf-8 path");
    for (name, role) in [
        ("insp1", "inspector"),
        ("insp2", "inspector"),
        ("sup", "supervisor"),
    ] {
        run_cli(
            &["user", "add", "--site", site, name, "--role", role],
            &[("SITCENTER_PASSWORD", PASSWORD)],
        );
    }
    let process = spawn(&["run", "--site", site]);
    wait_listening(http_port);
    (process, http_port)
}

/// The supervisor files `n` observations far apart (no deduplication): `n` appeals awaiting
/// confirmation.
fn file_appeals(port: u16, n: usize) -> Vec<String> {
    let (cookie, csrf) = sign_in(port, "sup", PASSWORD);
    (0..n)
        .map(|i| {
            let body = format!(
                r#"{{"category":"open_manhole","lat":{},"lon":{},"address":"Astana, review street {i}","description":"operator report {i}"}}"#,
                51.10 + 0.02 * i as f64,
                71.35 + 0.03 * i as f64
            );
            let (status, answer) = post_json(port, "/api/v1/appeals", &cookie, &csrf, &body);
            assert_eq!(status, 201, "{answer}");
            let json: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
            json["number"].as_str().expect("number").to_owned()
        })
        .collect()
}

fn sign_in_browser(browser: &Browser, port: u16, user: &str) {
    browser.open(&format!("http://127.0.0.1:{port}/"));
    browser.wait_until(
        "the sign-in form",
        "return !!document.getElementById('login-user')",
    );
    browser.type_into("#login-user", user);
    browser.type_into("#login-password", PASSWORD);
    browser.click("#login button[type=submit]");
    browser.wait_until(
        "the signed-in shell",
        "return document.body.dataset.loaded === '1'",
    );
}

fn shown_number(browser: &Browser) -> String {
    browser
        .eval("return document.getElementById('review').dataset.number")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn an_inspector_reviews_with_the_keyboard_only_and_follows_the_appeal_to_the_deadline_board() {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_node, port) = start(dir.path(), &db);
    let numbers = file_appeals(port, 4);

    // insp1 signs in: an inspector lands on the review queue and holds two items.
    let browser = Browser::start();
    sign_in_browser(&browser, port, "insp1");
    browser.wait_until(
        "an item under review",
        "const r = document.getElementById('review'); return !!r && !!r.dataset.number",
    );
    let first = shown_number(&browser);
    assert!(
        numbers.contains(&first),
        "{first} is not one of {numbers:?}"
    );

    // A second inspector never gets what insp1 holds.
    let (cookie2, csrf2) = sign_in(port, "insp2", PASSWORD);
    let (status, answer) = post_json(port, "/api/review/claim", &cookie2, &csrf2, "{}");
    assert_eq!(status, 200, "{answer}");
    let claim: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
    let theirs: Vec<&str> = claim["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["appeal"]["number"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(theirs.len(), 2, "{answer}");
    assert!(
        !theirs.contains(&first.as_str()),
        "insp2 got {first}, which insp1 holds"
    );
    // …and cannot decide it either.
    let (status, answer) = post_json(
        port,
        &format!("/api/review/{first}/verdict"),
        &cookie2,
        &csrf2,
        r#"{"verdict":"confirm"}"#,
    );
    assert_eq!(status, 409, "{answer}");

    // Keyboard only: C confirms the first item; the second is shown; R then 1 rejects it as
    // a false positive.
    browser.press("c");
    browser.wait_until(
        "the next item after the confirmation",
        &format!("const r = document.getElementById('review'); return !!r.dataset.number && r.dataset.number !== '{first}'"),
    );
    let second = shown_number(&browser);
    assert!(
        !theirs.contains(&second.as_str()),
        "insp1 was shown {second}, held by insp2"
    );
    browser.press("r");
    browser.wait_until(
        "the reject reasons",
        "return !!document.getElementById('reject-reasons')",
    );
    browser.press("1");
    browser.wait_until(
        "the queue after the rejection",
        &format!("return document.getElementById('review').dataset.number !== '{second}'"),
    );

    let (cookie1, csrf1) = sign_in(port, "insp1", PASSWORD);
    let appeal = |number: &str| -> serde_json::Value {
        let (status, body) = get_with(port, &format!("/api/v1/appeals/{number}"), &cookie1);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    };
    assert_eq!(appeal(&first)["status"], "confirmed");
    assert_eq!(appeal(&second)["status"], "rejected");
    let (_, timeline) = get_with(
        port,
        &format!("/api/v1/appeals/{second}/timeline"),
        &cookie1,
    );
    assert!(
        timeline.contains("\"reason\":\"false_positive\""),
        "{timeline}"
    );
    assert!(timeline.contains("\"actor\":\"user:insp1\""), "{timeline}");

    // The confirmed appeal is on the deadline board with its registration number.
    browser.eval("location.hash = '#/board'; return true");
    browser.wait_until(
        "the confirmed appeal on the board",
        &format!("return !!document.querySelector('#board-rows tr[data-number=\"{first}\"] a.reg-number')"),
    );
    assert_eq!(
        browser.eval(&format!(
            "return document.querySelector('#board-rows tr[data-number=\"{first}\"] a.reg-number').textContent"
        )),
        serde_json::json!(first)
    );
    assert_eq!(
        browser.eval(&format!(
            "return !!document.querySelector('#board-rows tr[data-number=\"{second}\"]')"
        )),
        serde_json::json!(false),
        "a rejected appeal is not open"
    );

    // An inspector may not close an appeal: the UI offers no working button, the API refuses.
    browser.eval(&format!("location.hash = '#/appeal/{first}'; return true"));
    browser.wait_until(
        "the appeal page",
        &format!("const n = document.getElementById('appeal-number'); return !!n && n.textContent === '{first}'"),
    );
    assert_eq!(
        browser.eval("return document.getElementById('action-close').disabled"),
        serde_json::json!(true)
    );
    let (status, answer) = post_json(
        port,
        &format!("/api/v1/appeals/{first}/close"),
        &cookie1,
        &csrf1,
        r#"{"confirmed_by":"inspector"}"#,
    );
    assert_eq!(status, 403, "{answer}");

    // Kazakh: the choice is remembered for the user, and no visible string is left in another
    // language (every text node is checked against the Russian and English catalogues).
    browser.eval(
        "const s = document.getElementById('language'); s.value = 'kk'; \
         s.dispatchEvent(new Event('change')); return true",
    );
    browser.wait_until("Kazakh", "return document.documentElement.lang === 'kk'");
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/i18n");
    let read =
        |lang: &str| std::fs::read_to_string(ui.join(format!("{lang}.json"))).expect("catalogue");
    let check = format!(
        "const ru = {}, en = {}, kk = {}; \
         const foreign = new Set(); \
         for (const k of Object.keys(ru)) {{ if (ru[k] !== kk[k]) foreign.add(ru[k]); if (en[k] !== kk[k]) foreign.add(en[k]); }} \
         const bad = []; \
         const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT); \
         for (let n = walk.nextNode(); n; n = walk.nextNode()) {{ const s = n.textContent.trim(); if (s && foreign.has(s)) bad.push(s); }} \
         for (const el of document.querySelectorAll('[placeholder],[title],[alt],[aria-label]')) \
           for (const a of ['placeholder','title','alt','aria-label']) {{ const v = el.getAttribute(a); if (v && foreign.has(v)) bad.push(a + '=' + v); }} \
         return bad;",
        read("ru"),
        read("en"),
        read("kk")
    );
    for screen in [
        "appeal/".to_owned() + &first,
        "board".into(),
        "review".into(),
        "cameras".into(),
        "map".into(),
    ] {
        browser.eval(&format!("location.hash = '#/{screen}'; return true"));
        browser.wait_until(
            &format!("screen {screen}"),
            &format!(
                "return document.body.dataset.screen === '{}'",
                screen.split('/').next().unwrap_or_default()
            ),
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
        let bad = browser.eval(&check);
        assert_eq!(bad, serde_json::json!([]), "untranslated on {screen}");
    }
    let (_, me) = get_with(port, "/api/auth/me", &cookie1);
    assert!(me.contains("\"language\":\"kk\""), "{me}");
}

#[test]
fn a_signed_out_inspectors_claims_go_back_to_the_queue_and_the_camera_page_is_bounded() {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let (_node, port) = start(dir.path(), &db);
    let numbers = file_appeals(port, 2);
    let (cookie1, csrf1) = sign_in(port, "insp1", PASSWORD);
    let (status, answer) = post_json(port, "/api/review/claim", &cookie1, &csrf1, "{}");
    assert_eq!(status, 200, "{answer}");
    assert!(
        numbers.iter().all(|n| answer.contains(n.as_str())),
        "{answer}"
    );
    let (cookie2, csrf2) = sign_in(port, "insp2", PASSWORD);
    let (_, answer) = post_json(port, "/api/review/claim", &cookie2, &csrf2, "{}");
    assert!(
        answer.contains("\"items\":[]"),
        "insp2 got held items: {answer}"
    );
    // insp1 signs out: the next claim of anyone voids the claims of a closed session.
    let (status, _) = post_json(port, "/api/auth/logout", &cookie1, &csrf1, "{}");
    assert_eq!(status, 204);
    let (_, answer) = post_json(port, "/api/review/claim", &cookie2, &csrf2, "{}");
    assert!(
        numbers.iter().all(|n| answer.contains(n.as_str())),
        "{answer}"
    );

    let (status, body) = get_with(port, "/api/cameras?limit=100000", &cookie2);
    assert_eq!(status, 400, "{body}");
    let (status, body) = get_with(port, "/api/cameras?limit=10&state=streaming", &cookie2);
    assert_eq!((status, body.as_str()), (200, "[]"));
    let (status, body) = get_with(port, "/api/city/layers/districts", &cookie2);
    assert_eq!(status, 200);
    assert!(
        body.contains("FeatureCollection"),
        "{}",
        &body[..body.len().min(200)]
    );
    let (status, _) = get_with(port, "/api/city/layers/../site.toml", &cookie2);
    assert_eq!(status, 404);
}
