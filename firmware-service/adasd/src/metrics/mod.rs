//! The Prometheus endpoint: `GET /metrics` (text format 0.0.4) and `GET /healthz` (the AEB
//! status on CAN as 200 or 503), opt-in with `[metrics] listen` (docs/METRICS.md).
//!
//! The run loop keeps the counters itself ([`Publisher`]: plain additions into fixed arrays)
//! and after each frame offers a copy to the server thread with `try_lock`: if a scrape holds
//! the copy just then, this frame's offer is skipped and the next one carries it (the counters
//! are cumulative), so the decision path never waits. The server thread ([`http`]) takes the
//! copy and formats it outside the lock. A server that cannot bind is an output failure:
//! logged, retried, never a reason to stop deciding.

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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

/// The counters as last published by the run loop, shared with the server thread.
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    published: Mutex<State>,
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
                published: Mutex::new(State::default()),
                detector,
                stale_after,
            }),
        }
    }

    /// The text exposition of the counters as last published.
    pub fn exposition(&self) -> String {
        let snapshot = *self.lock();
        snapshot.encode(&self.shared.detector)
    }

    /// The `/healthz` verdict now.
    pub fn health(&self) -> Health {
        let last = self.lock().last;
        health::verdict(last.as_ref(), Instant::now(), self.shared.stale_after)
    }

    /// The published copy; a panic elsewhere while it was held leaves it usable (it is only
    /// ever replaced whole).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The run loop's side: the counters, and their publication to [`Metrics`].
pub struct Publisher {
    state: State,
    metrics: Metrics,
}

impl Publisher {
    pub fn new(metrics: Metrics) -> Publisher {
        Publisher {
            state: State::default(),
            metrics,
        }
    }

    /// Adds one frame, once its status went to CAN and its outputs have it, and offers the
    /// counters to the server without waiting.
    pub fn frame(&mut self, observation: &FrameObservation) {
        self.state.frame(observation, Instant::now());
        match self.metrics.shared.published.try_lock() {
            Ok(mut published) => *published = self.state,
            Err(TryLockError::Poisoned(p)) => *p.into_inner() = self.state,
            // A scrape is copying: the next frame publishes this one's counts too.
            Err(TryLockError::WouldBlock) => {}
        }
    }

    /// The run is over and the bus heard status Off (published even if a scrape is copying:
    /// the decisions are done).
    pub fn off(&mut self) {
        self.state.off(Instant::now());
        *self.metrics.lock() = self.state;
    }
}

/// The counters and the server that exposes them, for one run.
pub struct Endpoint {
    pub publisher: Publisher,
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
            publisher: Publisher::new(metrics),
            _server: server,
        }))
    }
}
