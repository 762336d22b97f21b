//! Returning memory to the OS after pipelines stop.
//!
//! A stopped pipeline frees its buffers, but glibc's allocator keeps freed heap
//! memory (per-thread arenas, a mmap threshold that rises after large frees), so
//! a node whose cameras come and go would see its RSS creep up although nothing
//! leaks (checked with heaptrack: the heap left after hundreds of camera runs is
//! GStreamer's one-time registry). `malloc_trim` hands the free pages back.

/// Asks the allocator to release free memory, off the async runtime (it walks
/// every arena). Called after cameras were removed or restarted.
pub(super) async fn release_freed_memory() {
    let trimmed = tokio::task::spawn_blocking(trim).await;
    if trimmed.is_err() {
        tracing::warn!("memory trim task failed");
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim takes a plain integer, touches only the allocator's own
    // state (under its locks) and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
