//! The UI's catalogues (`ui/src/i18n/{ru,kk,en}.json`): every language has every key, every
//! key the code asks for exists, and no human-readable string is left in the code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn ui() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ui")
}

fn catalogue(lang: &str) -> serde_json::Map<String, serde_json::Value> {
    let path = ui().join(format!("src/i18n/{lang}.json"));
    let text = std::fs::read_to_string(&path).expect("catalogue");
    match serde_json::from_str(&text).expect("catalogue is JSON") {
        serde_json::Value::Object(map) => map,
        _ => panic!("{} is not an object", path.display()),
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).expect("ui/src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "ts") {
                let text = std::fs::read_to_string(&path).expect("read");
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&ui().join("src"), &mut out);
    out.sort();
    out
}

/// String literals of a TypeScript file with their line (quotes and backticks; template
/// placeholders `${…}` are cut out). Comments are skipped.
fn literals(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
        }
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 2;
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            let start_line = line;
            let mut s = String::new();
            let mut depth = 0;
            i += 1;
            while i < chars.len() && !(chars[i] == c && depth == 0) {
                if chars[i] == '\\' {
                    i += 1;
                } else if c == '`' && chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                    depth += 1;
                    s.push(' ');
                } else if depth > 0 && chars[i] == '}' {
                    depth -= 1;
                } else if depth == 0 {
                    s.push(chars[i]);
                }
                if chars.get(i) == Some(&'\n') {
                    line += 1;
                }
                i += 1;
            }
            out.push((start_line, s));
        }
        i += 1;
    }
    out
}

/// Text a person would read: any Cyrillic letter, or two words of letters with a capital
/// start ("Sign in"), or a phrase ending in `:`/`…`/`.` with a space.
fn looks_human(s: &str) -> bool {
    if s.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)) {
        return true;
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    let wordy = words
        .iter()
        .filter(|w| w.chars().all(|c| c.is_alphabetic() || c == ',' || c == '.'))
        .count();
    let capital = s.chars().next().is_some_and(char::is_uppercase);
    (capital && wordy >= 2) || (wordy >= 3 && words.len() == wordy)
}

#[test]
fn every_language_has_every_key_and_no_empty_string() {
    let ru = catalogue("ru");
    let ru_keys: BTreeSet<&String> = ru.keys().collect();
    for lang in ["kk", "en"] {
        let other = catalogue(lang);
        let keys: BTreeSet<&String> = other.keys().collect();
        let missing: Vec<_> = ru_keys.difference(&keys).collect();
        let extra: Vec<_> = keys.difference(&ru_keys).collect();
        assert!(missing.is_empty(), "{lang}.json lacks {missing:?}");
        assert!(
            extra.is_empty(),
            "{lang}.json has keys ru.json lacks: {extra:?}"
        );
        for (key, value) in &other {
            assert!(
                value.as_str().is_some_and(|v| !v.trim().is_empty()),
                "{lang}.json: `{key}` is empty"
            );
        }
    }
}

#[test]
fn every_key_the_code_asks_for_is_in_the_catalogue() {
    let ru = catalogue("ru");
    let mut asked = 0;
    for (path, text) in sources() {
        for (n, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("t(\"") {
                let before = line[..at].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let rest = &line[at + 3..];
                let Some(end) = rest.find('"') else { continue };
                let key = &rest[..end];
                // `t("lang." + l)` builds its key: only whole literal keys are checked here
                // (built keys are covered by every catalogue having every key).
                if !matches!(rest[end + 1..].chars().next(), Some(')' | ',')) {
                    continue;
                }
                asked += 1;
                assert!(
                    ru.contains_key(key),
                    "{}:{}: key `{key}` is not in the catalogues",
                    path.display(),
                    n + 1
                );
            }
        }
    }
    assert!(
        asked > 50,
        "the scan found only {asked} keys: is it reading ui/src?"
    );
}

#[test]
fn no_human_readable_string_is_left_in_the_code() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        for (line, literal) in literals(&text) {
            if looks_human(&literal) {
                found.push(format!("{}:{line}: {literal:?}", path.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "strings left in code (move them to ui/src/i18n/*.json):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_string_scan_finds_what_it_must() {
    let code =
        "const a = \"Sign in\";\n// \"Not this\"\nconst b = `Войти ${x}`;\nconst c = \"btn\";";
    let hits: Vec<String> = literals(code)
        .into_iter()
        .filter(|(_, s)| looks_human(s))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(hits, vec!["Sign in".to_owned(), "Войти  ".to_owned()]);
    assert!(!looks_human("#/review"));
    assert!(!looks_human("status status-closed"));
}
