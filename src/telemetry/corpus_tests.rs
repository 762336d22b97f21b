//! The committed fuzz corpora (`fuzz/corpus/{wialon,teltonika,osmand,json}`) replayed as unit
//! tests, so CI exercises them without a nightly toolchain: a file named `ok-…` must decode,
//! `reject-<reason>-…` must be refused for that reason (fuzz/README.md).

use std::path::Path;

use super::fix::{RejectReason, Rejection};
use super::{json, osmand, teltonika, wialon};

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("entry").path();
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .expect("name")
                .to_owned();
            (file, std::fs::read(&path).expect("read"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{name}: corpus too small");
    files
}

/// Checks one outcome against the file name; returns a complaint when they disagree.
fn judge(file: &str, outcome: Result<(), Rejection>) -> Option<String> {
    match (file.strip_prefix("ok-"), outcome) {
        (Some(_), Ok(())) => None,
        (Some(_), Err(r)) => Some(format!("{file}: refused ({r})")),
        (None, Ok(())) => Some(format!("{file}: accepted")),
        (None, Err(r)) => {
            let want = file.strip_prefix("reject-").unwrap_or(file);
            let reason = RejectReason::ALL
                .iter()
                .find(|x| want.starts_with(&format!("{}-", x.as_str())));
            (reason != Some(&r.reason)).then(|| format!("{file}: refused as {r}"))
        }
    }
}

fn teltonika_outcome(data: &[u8]) -> Result<(), Rejection> {
    if let Ok(teltonika::Framed::Unit { consumed, .. }) = teltonika::imei(data)
        && consumed == data.len()
    {
        return Ok(());
    }
    match teltonika::packet(data) {
        Ok(teltonika::Framed::Unit { value, .. }) => {
            value.records.into_iter().try_for_each(|r| r.map(|_| ()))
        }
        Ok(teltonika::Framed::Incomplete) => Err(Rejection::new(RejectReason::Malformed, "short")),
        Err((r, _)) => Err(r),
    }
}

#[test]
fn the_fuzz_corpora_of_every_gps_protocol_give_the_outcome_their_names_say() {
    let now = chrono::DateTime::from_timestamp(1_764_590_400, 0).expect("time");
    let mut wrong = Vec::new();
    for (file, data) in corpus("wialon") {
        let line = data.strip_suffix(b"\r\n").unwrap_or(&data);
        let outcome = wialon::parse(line).map(|_| ()).map_err(|e| e.rejection);
        wrong.extend(judge(&file, outcome));
    }
    for (file, data) in corpus("teltonika") {
        wrong.extend(judge(&file, teltonika_outcome(&data)));
    }
    for (file, data) in corpus("osmand") {
        let text = String::from_utf8_lossy(&data);
        wrong.extend(judge(&file, osmand::parse(&text, now).map(|_| ())));
    }
    for (file, data) in corpus("json") {
        wrong.extend(judge(&file, json::parse(&data).map(|_| ())));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
