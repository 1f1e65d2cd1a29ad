//! `scenario run [--seeds N] [--out DIR] [--threads N] FILE...` — runs AEB scenario files
//! through the simulator and the daemon's real perception/tracking/decision code, prints the
//! markdown results table, and writes per variant a CSV time series and a PNG plot of seed 0
//! (plus `results.md`) into `--out` (default `out/scenarios`).
//!
//! Exit status: 0 all passed, 1 some run failed its criterion, 2 bad input.

use adas_system_tests::sim::{self, report, SimSetup};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: scenario run [--seeds N] [--out DIR] [--threads N] [--record DIR] FILE...";

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("scenario: {e}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<bool, String> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("run") => {}
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            return Ok(true);
        }
        Some(other) => return Err(format!("unknown command `{other}`\n{USAGE}")),
    }
    let mut seeds: Option<u32> = None;
    let mut out = PathBuf::from("out/scenarios");
    let mut threads = sim::default_threads();
    let mut files = Vec::new();
    let mut record: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--seeds" => {
                let v = value("--seeds")?;
                seeds = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("--seeds: `{v}` is not a positive number"))?,
                );
            }
            "--out" => out = PathBuf::from(value("--out")?),
            "--record" => record = Some(PathBuf::from(value("--record")?)),
            "--threads" => {
                let v = value("--threads")?;
                threads = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--threads: `{v}` is not a positive number"))?;
            }
            _ if a.starts_with("--") => return Err(format!("unknown option `{a}`\n{USAGE}")),
            _ => files.push(PathBuf::from(a)),
        }
    }
    if files.is_empty() {
        return Err(format!("no scenario files\n{USAGE}"));
    }
    let mut variants = Vec::new();
    for f in &files {
        variants.extend(sim::load(f).map_err(|e| e.to_string())?);
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let setup = SimSetup::standard()?;
    let mut rows = Vec::new();
    for v in &variants {
        let n = seeds.unwrap_or(v.seeds);
        let runs = sim::run_seeds(v, n, &setup, true, threads);
        let summary = sim::summarize(v, &runs);
        eprintln!(
            "{:<40} {:>3}/{:<3} passed",
            summary.label, summary.passed, summary.seeds
        );
        if let Some(r0) = runs.iter().find(|r| r.seed == 0) {
            let slug = report::slug(&v.label());
            let csv = out.join(format!("{slug}.csv"));
            report::write_csv(&csv, &r0.samples)
                .map_err(|e| format!("cannot write {}: {e}", csv.display()))?;
            let outcome = match r0.outcome {
                sim::Outcome::Avoided => format!("avoided, min gap {:.2} m", r0.min_gap_m),
                sim::Outcome::Impact { kph } => format!("impact at {kph:.1} km/h"),
            };
            if let Some(dir) = &record {
                let path = dir.join(format!("{slug}.mcap"));
                write_recording(&path, &v.label(), r0)?;
            }
            sim::plot::write_png(
                &out.join(format!("{slug}.png")),
                &format!("{} (seed 0): {outcome}", v.label()),
                &r0.samples,
            )?;
        }
        rows.push(summary);
    }
    let table = sim::markdown_table(&rows);
    println!("{table}");
    let md = out.join("results.md");
    std::fs::write(&md, &table).map_err(|e| format!("cannot write {}: {e}", md.display()))?;
    Ok(rows.iter().all(|r| r.all_passed()))
}

/// Seed 0 of a variant as an MCAP recording (detections, BEV, tracks, decisions; no camera).
fn write_recording(path: &std::path::Path, label: &str, r: &sim::RunResult) -> Result<(), String> {
    use adas_record::schema::{encode_frame, FrameRecord};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let metadata = [
        ("source", "scenario simulator".to_string()),
        ("scenario", label.to_string()),
        ("seed", r.seed.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut file =
        adas_record::writer::McapFile::create(path, &metadata, 0).map_err(|e| e.to_string())?;
    for (t_ns, outcome) in &r.outcomes {
        let messages = encode_frame(&FrameRecord {
            seq: outcome.decision.seq,
            t_ns: *t_ns,
            jpeg: None,
            outcome: Some(outcome),
            can_rx: &[],
            can_tx: &[],
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
        file.write_frame(&messages).map_err(|e| e.to_string())?;
    }
    file.finish().map_err(|e| e.to_string())?;
    Ok(())
}
