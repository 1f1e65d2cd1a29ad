//! What the metrics cost the decision path: `Publisher::frame` per frame (count, then publish
//! without waiting), alone and while another thread scrapes (copies and formats the counters)
//! without pause, the worst a scraper can do.
//!
//! `cargo bench -p adasd --bench metrics` prints p50 / p99 / max over 200 000 frames each.
//! Timing lives here, never in pass/fail tests.

use adas_core::aeb::decider::Stage;
use adas_core::can::messages::Status;
use adasd::metrics::{Decided, FrameObservation, LinkCounters, Metrics, Publisher, MAX_OUTPUTS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FRAMES: usize = 200_000;

fn observation(k: usize) -> FrameObservation {
    // An FCW every 50 frames.
    let warning = k.is_multiple_of(50);
    FrameObservation {
        decided: Ok(Decided {
            stage: if warning { Stage::Fcw } else { Stage::None },
            warning,
            inhibit: None,
            detector: Some(Duration::from_micros(30_000 + (k % 7) as u64 * 1000)),
        }),
        pipeline: Duration::from_micros(32_000),
        capture_to_can: Duration::from_micros(45_000),
        status: Status::off(),
        inhibit: None,
        can_rx: 5,
        can_logged: 2,
        link: LinkCounters::default(),
        recording: None,
        outputs: [None; MAX_OUTPUTS],
    }
}

/// p50, p99 and max of `Publisher::frame`, µs.
fn time_frames(publisher: &mut Publisher) -> (f64, f64, f64) {
    let mut ns: Vec<u64> = Vec::with_capacity(FRAMES);
    for k in 0..FRAMES {
        let o = observation(k);
        let start = Instant::now();
        publisher.frame(&o);
        ns.push(start.elapsed().as_nanos() as u64);
    }
    ns.sort_unstable();
    let q = |p: f64| ns[((ns.len() - 1) as f64 * p).round() as usize] as f64 / 1e3;
    (q(0.5), q(0.99), q(1.0))
}

fn main() {
    let metrics = Metrics::new("bench".into(), Duration::from_secs(1));
    let mut publisher = Publisher::new(metrics.clone());
    let (p50, p99, max) = time_frames(&mut publisher);
    println!(
        "Publisher::frame, no scraper:        p50 {p50:.3} µs  p99 {p99:.3} µs  max {max:.1} µs"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (metrics, stop) = (metrics.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut scrapes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::hint::black_box(metrics.exposition());
                scrapes += 1;
            }
            scrapes
        })
    };
    let started = Instant::now();
    let (p50, p99, max) = time_frames(&mut publisher);
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let scrapes = scraper.join().unwrap_or(0);
    println!(
        "Publisher::frame, scraping non-stop: p50 {p50:.3} µs  p99 {p99:.3} µs  max {max:.1} µs  \
         ({:.0} scrapes/s)",
        scrapes as f64 / seconds
    );
}
