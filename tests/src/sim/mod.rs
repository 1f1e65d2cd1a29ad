//! Scenario simulator (software in the loop) for the AEB decision core: scenario files
//! ([`scenario`]), the simulated world with camera, perception noise and brake model
//! ([`world`]), and reports — markdown table, CSV time series, PNG plot ([`report`], [`plot`]).
//!
//! The daemon's own pipeline runs inside: BEV projection with the camera's homography, the
//! tracker and the decider, exactly as `adasd run` calls them.

pub mod plot;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod world;

pub use report::{markdown_table, summarize, VariantSummary};
pub use scenario::{load, parse, Expect, Scenario, ScenarioError};
pub use world::{judge, run, Outcome, RunResult, SimSetup};

/// Runs `seeds` seeds of one variant, on up to `threads` threads; seeds below `record_seeds`
/// keep their time series and outcomes.
pub fn run_seeds(
    s: &Scenario,
    seeds: u32,
    setup: &SimSetup,
    record_seeds: u64,
    threads: usize,
) -> Vec<RunResult> {
    let seeds: Vec<u64> = (0..u64::from(seeds)).collect();
    let threads = threads.clamp(1, 16);
    let chunk = seeds.len().div_ceil(threads).max(1);
    let mut out: Vec<RunResult> = Vec::with_capacity(seeds.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&seed| run(s, seed, setup, seed < record_seeds))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            if let Ok(v) = h.join() {
                out.extend(v);
            }
        }
    });
    out
}

/// Number of worker threads: the machine's parallelism.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
