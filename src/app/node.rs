//! A running node without its HTTP front: ingest, FrameQueue and the analysis
//! consumer. Tests and benchmarks start one directly.

use std::sync::Arc;
use std::time::Duration;

use crate::config::SiteConfig;
use crate::ingest::{FrameQueue, Ingest};
use crate::obs::Metrics;
use crate::web::Previews;

use super::AppError;

pub struct Node {
    pub ingest: Arc<Ingest>,
    pub metrics: Arc<Metrics>,
    pub previews: Arc<Previews>,
    consumer: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Frames taken from the queue per wake-up of the consumer.
const CONSUMER_BATCH: usize = 32;

impl Node {
    /// Starts the frame path and every camera of `site`. `live` selects the live
    /// policy (drop when behind) over replay's (block, lose nothing).
    pub async fn start(
        site: &SiteConfig,
        metrics: Arc<Metrics>,
        live: bool,
    ) -> Result<Node, AppError> {
        let queue = Arc::new(FrameQueue::new(site.ingest.frame_queue_capacity));
        let ingest = Arc::new(Ingest::new(
            site.ingest.clone(),
            queue.clone(),
            metrics.clone(),
            live,
        )?);
        let previews = Arc::new(Previews::default());
        let consumer = {
            let previews = previews.clone();
            let metrics = metrics.clone();
            std::thread::Builder::new()
                .name("frame-consumer".to_owned())
                .spawn(move || consume(&queue, &previews, &metrics))
                .map_err(AppError::Serve)?
        };
        ingest.apply(site.cameras.clone()).await;
        Ok(Node {
            ingest,
            metrics,
            previews,
            consumer: parking_lot::Mutex::new(Some(consumer)),
        })
    }

    /// Stops cameras first, then lets the consumer drain the queue and end.
    pub async fn stop(&self) {
        self.ingest.shutdown().await;
        self.ingest.queue().close();
        let consumer = self.consumer.lock().take();
        if let Some(consumer) = consumer {
            let joined = tokio::task::spawn_blocking(move || consumer.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("frame consumer ended abnormally");
            }
        }
        self.previews.clear();
    }
}

/// The analysis stage of the frame path. Today it keeps each camera's latest
/// frame for the UI; the detectors take frames from the same queue.
fn consume(queue: &FrameQueue, previews: &Previews, metrics: &Metrics) {
    while let Some(batch) = queue.pop_batch(CONSUMER_BATCH, Duration::from_millis(500)) {
        metrics.frame_queue_depth.set(queue.len() as i64);
        for frame in batch {
            metrics.frames_consumed.inc();
            previews.put(frame);
        }
    }
}
