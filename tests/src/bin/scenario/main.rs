//! `scenario run [--seeds N] [--out DIR] [--threads N] [--record DIR] FILE...` — runs AEB
//! scenario files through the simulator and the daemon's real perception/tracking/decision code, prints the
//! markdown results table, and writes per variant a CSV time series and a PNG plot of seed 0
//! (plus `results.md`) into `--out` (default `out/scenarios`).
//!
//! Exit status: 0 all passed, 1 some run failed its criterion, 2 bad input.

use adas_system_tests::sim::{self, report, SimSetup};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "scenario",
    version,
    about = "The AEB scenario suite: simulated drives through the daemon's perception, tracking \
             and decision code",
    after_help = "Exit status: 0 every run passed, 1 some run failed its criterion, 2 bad input \
                  (usage, unreadable scenario file, unwritable output). docs/CLI.md has the \
                  details.",
    help_expected = true
)]
struct Cli {
    #[command(flatten)]
    verbosity: adas_cli::Verbosity,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Run scenario files: prints the markdown results table and writes per variant a CSV time
    /// series and a PNG plot of seed 0, plus results.md, into --out.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Seeds per variant (default: each scenario file's own `seeds`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    seeds: Option<u32>,
    /// Output folder for the CSV series, plots and results.md.
    #[arg(long, default_value = "out/scenarios")]
    out: PathBuf,
    /// Worker threads (default: the machine's cores).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    /// Also write seed 0 of every variant as an MCAP recording into this folder.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Scenario files (TOML), e.g. tests/scenarios/*.toml.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    // Usage errors exit with clap's status 2, the same as bad input below.
    let cli = Cli::parse();
    let _logging = adas_cli::init(&cli.verbosity);
    let Command::Run(args) = cli.command;
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("scenario: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: RunArgs) -> Result<bool, String> {
    let RunArgs {
        seeds,
        out,
        threads,
        record,
        files,
    } = args;
    let threads = threads.map_or_else(sim::default_threads, |n| n as usize);
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_argument_has_help_and_the_parser_is_consistent() {
        // `help_expected`: clap's debug assertions refuse an argument without help text.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
