//! ONNX Runtime loading in a fresh process (its own test binary, one test): ort keeps the
//! first library it loads for the whole process, so what happens *before* any successful load
//! can only be observed here, not among the module tests in `src/detect/tests.rs`.

use std::path::{Path, PathBuf};

use sitcenter::detect::{DetectError, Runtime};

fn runtime_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".local/share/sitcenter/onnxruntime-1.31.1/libonnxruntime.so.1.31.1"),
    }
}

#[test]
fn a_file_that_is_not_a_library_is_a_load_error_and_the_real_library_still_loads_after_it() {
    let not_a_library = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny/model.onnx");
    let err = Runtime::load(Some(&not_a_library)).expect_err("an ONNX file is not a library");
    assert!(matches!(err, DetectError::RuntimeLoad { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("models/tiny/model.onnx") && message.contains("could not be loaded"),
        "{message}"
    );
    // A failed load leaves nothing behind: the right library can still be loaded.
    Runtime::load(Some(&runtime_library())).expect("ONNX Runtime (run scripts/bootstrap.sh)");
}
