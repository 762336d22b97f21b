//! Where the camera supervisors run: `receive_threads` threads, each driving a tokio
//! current-thread runtime in ticks of `receive_tick_ms`. A tick runs every ready task,
//! polls the I/O and timer drivers without blocking, and then the thread *sleeps* for the
//! rest of the tick instead of waiting in `epoll_wait`. While it sleeps, packets arriving
//! on thousands of sockets wake no thread: the next tick collects all their readiness
//! events in one `epoll_wait`. A runtime parked in `epoll_wait` (tokio's normal mode) is
//! woken by the kernel for nearly every RTP packet of every camera; on the 2-core VM that
//! was half of the receive cost (perf: `finish_task_switch` on the tokio workers,
//! docs/performance.md).
//!
//! The price is up to one tick of delay on every wake-up (timers, RTSP replies, frames),
//! irrelevant next to a 2 s sampling interval. A zero tick runs the supervisors on the
//! caller's runtime instead, as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::Handle;

use super::IngestError;

/// Drive rounds per tick: each runs the ready tasks and polls the drivers, so that a
/// reply that its own request's task was waiting for in the same tick is taken at once.
const ROUNDS_PER_TICK: usize = 4;

pub(super) struct Ticker {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Ticker {
    /// `threads` receive threads ticking every `tick`.
    pub(super) fn start(threads: usize, tick: Duration) -> Result<Self, IngestError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        let mut joins = Vec::new();
        for index in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| IngestError::Pool(format!("cannot start a receive runtime: {e}")))?;
            handles.push(runtime.handle().clone());
            let stop = stop.clone();
            let join = std::thread::Builder::new()
                .name(format!("receive-{index}"))
                .spawn(move || drive(&runtime, tick, &stop))
                .map_err(|e| IngestError::Pool(format!("cannot start a receive thread: {e}")))?;
            joins.push(join);
        }
        Ok(Self {
            handles,
            next: AtomicUsize::new(0),
            stop,
            threads: Mutex::new(joins),
        })
    }

    /// The runtime the next camera goes to (round robin).
    pub(super) fn handle(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for join in self.threads.lock().drain(..) {
            if join.join().is_err() {
                tracing::error!("a receive thread panicked");
            }
        }
    }
}

fn drive(runtime: &tokio::runtime::Runtime, tick: Duration, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        runtime.block_on(async {
            for _ in 0..ROUNDS_PER_TICK {
                // Deferred until the scheduler has run the ready tasks and polled the
                // drivers (without blocking, since a task is waiting to resume).
                tokio::task::yield_now().await;
            }
        });
        std::thread::sleep(tick);
    }
}
