//! The Prometheus endpoint: `GET /metrics` (text format 0.0.4) and `GET /healthz` (the AEB
//! status on CAN as 200 or 503), opt-in with `[metrics] listen` (docs/METRICS.md).
//!
//! The run loop adds each frame to [`Metrics`] under a lock held for a few hundred
//! nanoseconds (plain additions into fixed arrays); the server thread ([`http`]) copies the
//! counters under the same lock and formats them outside it, so a scrape never slows a
//! decision. A server that cannot bind is an output failure: logged, retried, never a reason
//! to stop deciding.

mod health;
mod histogram;
mod http;
mod state;
mod text;

pub use health::Health;
pub use http::bind_hint;
pub use state::{
    BusCounters, Decided, FrameObservation, LinkCounters, OutputHealth, RecordingCounters,
    SkipReason, MAX_OUTPUTS,
};

use crate::config::MetricsConfig;
use state::State;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The counters, shared between the run loop and the server thread.
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// What makes the detections ("MODEL on BACKEND"), for `adas_build_info`.
    detector: String,
    /// No status for this long: `/healthz` reports the pipeline stalled (`[can] stale_after_ms`,
    /// the CAN thread's own threshold).
    stale_after: Duration,
}

impl Metrics {
    pub fn new(detector: String, stale_after: Duration) -> Metrics {
        Metrics {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                detector,
                stale_after,
            }),
        }
    }

    /// Adds one frame, once its status went to CAN and its outputs have it.
    pub fn frame(&self, observation: &FrameObservation) {
        let now = Instant::now();
        self.lock().frame(observation, now);
    }

    /// The run is over and the bus heard status Off.
    pub fn off(&self) {
        let now = Instant::now();
        self.lock().off(now);
    }

    /// The text exposition of the counters as they are now.
    pub fn exposition(&self) -> String {
        let snapshot = *self.lock();
        snapshot.encode(&self.shared.detector)
    }

    /// The `/healthz` verdict now.
    pub fn health(&self) -> Health {
        let last = self.lock().last;
        health::verdict(last.as_ref(), Instant::now(), self.shared.stale_after)
    }

    /// The counters; a panic elsewhere while they were held leaves them usable (they are
    /// plain numbers, each update complete or not begun).
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The counters and the server that exposes them, for one run.
pub struct Endpoint {
    pub metrics: Metrics,
    /// `None` when its thread could not be started (logged).
    _server: Option<http::Server>,
}

impl Endpoint {
    /// The endpoint `[metrics]` asks for (`None`: off). Binding happens on the server's thread:
    /// an address that cannot be bound yet is logged and retried, and the run goes on.
    pub fn start(
        config: &MetricsConfig,
        detector: String,
        stale_after: Duration,
    ) -> anyhow::Result<Option<Endpoint>> {
        let Some(addr) = config
            .listen_addr()
            .map_err(|r| anyhow::anyhow!("config: {}", r.within("metrics")))?
        else {
            return Ok(None);
        };
        let metrics = Metrics::new(detector, stale_after);
        let timeout = Duration::from_millis(config.timeout_ms);
        let server = match http::Server::start(addr, timeout, metrics.clone()) {
            Ok(server) => Some(server),
            Err(e) => {
                tracing::error!(
                    "metrics endpoint: cannot start its thread: {e}; running without it"
                );
                None
            }
        };
        Ok(Some(Endpoint {
            metrics,
            _server: server,
        }))
    }
}
