//! The built UI (`ui/dist/`), embedded at compile time under fixed names (`ui/vite.config.ts`
//! turns off content hashes), with the content type and an ETag of each file.
//!
//! `ui/dist/` is committed so that a fresh machine builds the binary without Node.js; the
//! build writes `ui/dist/source.sha256`, the digest of every source file of the UI, and the
//! test below recomputes it: a change to `ui/src` without a rebuild fails the test.

/// One embedded file.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    pub etag: &'static str,
}

macro_rules! embedded {
    ($($path:literal => $type:literal),* $(,)?) => {
        const FILES: &[(&str, &str, &[u8])] = &[
            $(($path, $type, include_bytes!(concat!("../../ui/dist/", $path)))),*
        ];
    };
}

embedded! {
    "index.html" => "text/html; charset=utf-8",
    "assets/app.js" => "text/javascript; charset=utf-8",
    "assets/app.css" => "text/css; charset=utf-8",
}

/// The digest the UI build recorded for its sources (see `ui/scripts/stamp.mjs`).
#[cfg(test)]
const SOURCE_DIGEST: &str = include_str!("../../ui/dist/source.sha256");

/// The embedded file at `path` (`index.html`, `assets/app.js`, …).
pub fn asset(path: &str) -> Option<Asset> {
    static ETAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let etags = ETAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, bytes)| {
                use sha2::Digest as _;
                let digest = sha2::Sha256::digest(bytes);
                format!("\"{}\"", hex(&digest[..12]))
            })
            .collect()
    });
    FILES
        .iter()
        .zip(etags)
        .find(|((p, _, _), _)| *p == path)
        .map(|((_, content_type, bytes), etag)| Asset {
            content_type,
            bytes,
            etag: etag.as_str(),
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The source digest the build recorded.
#[cfg(test)]
fn source_digest() -> &'static str {
    SOURCE_DIGEST.trim()
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    /// The files the digest covers: what `ui/scripts/stamp.mjs` lists, in the same order.
    fn sources(ui: &Path) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
                .expect("ui source folder")
                .map(|e| e.expect("entry").path())
                .collect();
            entries.sort();
            for path in entries {
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(&ui.join("src"), &mut files);
        for top in [
            "index.html",
            "package.json",
            "package-lock.json",
            "tsconfig.json",
            "vite.config.ts",
        ] {
            files.push(ui.join(top));
        }
        files
    }

    #[test]
    fn the_embedded_ui_was_built_from_the_sources_in_the_tree() {
        use sha2::Digest as _;
        let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut files: Vec<(String, PathBuf)> = sources(&ui)
            .into_iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(&ui)
                    .expect("under ui/")
                    .to_string_lossy()
                    .replace('\\', "/");
                (rel, p)
            })
            .collect();
        files.sort();
        let mut hasher = sha2::Sha256::new();
        for (rel, path) in &files {
            hasher.update(rel.as_bytes());
            hasher.update([0]);
            hasher.update(std::fs::read(path).expect("read ui source"));
            hasher.update([0]);
        }
        let digest = hex(&hasher.finalize());
        assert_eq!(
            digest,
            source_digest(),
            "ui/dist is stale: run `npm --prefix ui ci && npm --prefix ui run build` and commit ui/dist"
        );
    }

    #[test]
    fn every_embedded_file_is_found_with_its_type_and_unknown_paths_are_not() {
        let index = asset("index.html").expect("index.html");
        assert!(index.content_type.starts_with("text/html"));
        assert!(std::str::from_utf8(index.bytes).is_ok_and(|s| s.contains("/assets/app.js")));
        assert!(asset("assets/app.js").is_some_and(|a| !a.bytes.is_empty()));
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("assets/nope.js").is_none());
    }
}
