//! `scenario run [--seeds N] [--out DIR] [--threads N] [--record DIR [--record-seeds N]] FILE...`
//! — runs AEB scenario files through the simulator and the daemon's real
//! perception/tracking/decision code, prints the markdown results table, and writes per variant
//! a CSV time series and a PNG plot of seed 0 (plus `results.md`) into `--out` (default
//! `out/scenarios`).
//!
//! `--record DIR` writes seeds 0 … N−1 (`--record-seeds`, default 1) of every variant as MCAP
//! recordings that `adasd replay --recorded-detections` replays (`replay_files`).
//!
//! Exit status: 0 all passed, 1 some run failed its criterion, 2 bad input.

use adas_system_tests::sim::{self, report, SimSetup};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

mod replay_files;

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
    /// Also write seeds 0 … N−1 (--record-seeds) of every variant as MCAP recordings into this
    /// folder, replayable with `adasd replay --recorded-detections`.
    #[arg(long)]
    record: Option<PathBuf>,
    /// With --record: how many seeds of each variant to record.
    #[arg(long, default_value_t = 1, requires = "record",
          value_parser = clap::value_parser!(u64).range(1..))]
    record_seeds: u64,
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
        record_seeds,
        files,
    } = args;
    let threads = threads.map_or_else(sim::default_threads, |n| n as usize);
    let mut variants = Vec::new();
    for f in &files {
        variants.extend(sim::load(f).map_err(|e| e.to_string())?);
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let setup = SimSetup::standard()?;
    let replay_config = match &record {
        Some(dir) => Some(replay_files::write_config(dir, &setup)?),
        None => None,
    };
    let mut rows = Vec::new();
    for v in &variants {
        let n = seeds.unwrap_or(v.seeds);
        // Seed 0 always (its CSV and plot), and the seeds to record.
        let runs = sim::run_seeds(v, n, &setup, record_seeds, threads);
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
            sim::plot::write_png(
                &out.join(format!("{slug}.png")),
                &format!("{} (seed 0): {outcome}", v.label()),
                &r0.samples,
            )?;
        }
        if let (Some(dir), Some(config)) = (&record, &replay_config) {
            for r in runs.iter().filter(|r| r.seed < record_seeds) {
                let name = match r.seed {
                    0 => format!("{}.mcap", report::slug(&v.label())),
                    k => format!("{}.seed{k}.mcap", report::slug(&v.label())),
                };
                replay_files::write_recording(&dir.join(name), &v.label(), r, config)?;
            }
        }
        rows.push(summary);
    }
    let table = sim::markdown_table(&rows);
    println!("{table}");
    let md = out.join("results.md");
    std::fs::write(&md, &table).map_err(|e| format!("cannot write {}: {e}", md.display()))?;
    Ok(rows.iter().all(|r| r.all_passed()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_argument_has_help_and_the_parser_is_consistent() {
        // `help_expected`: clap's debug assertions refuse an argument without help text.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
