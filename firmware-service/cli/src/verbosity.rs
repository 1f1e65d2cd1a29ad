//! `-v`/`--verbose` and `-q`/`--quiet`: the same two flags on every binary, global to its
//! subcommands (`adasd -v run …` and `adasd run -v …` alike).

use clap::ArgAction;
use tracing_subscriber::filter::LevelFilter;

/// The verbosity flags. Flatten into a binary's top-level parser:
/// `#[command(flatten)] verbosity: adas_cli::Verbosity`.
#[derive(clap::Args, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verbosity {
    /// More output, repeatable: -v logs at info level and prints per-frame lines where a
    /// command has them (`adasd run` into a pipe, `replay`), -vv debug, -vvv trace. ADASD_LOG,
    /// when set, decides the log level instead.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    /// Less output, repeatable: -q logs errors only and leaves out per-frame and progress lines,
    /// -qq logs nothing. ADASD_LOG, when set, decides the log level instead.
    #[arg(
        short,
        long,
        action = ArgAction::Count,
        global = true,
        conflicts_with = "verbose"
    )]
    quiet: u8,
}

impl Verbosity {
    /// `-v` given `verbose` times, `-q` given `quiet` times.
    pub fn new(verbose: u8, quiet: u8) -> Verbosity {
        Verbosity { verbose, quiet }
    }

    /// The log level these flags ask for: warnings and errors by default.
    pub fn level(&self) -> LevelFilter {
        match i16::from(self.verbose) - i16::from(self.quiet) {
            ..=-2 => LevelFilter::OFF,
            -1 => LevelFilter::ERROR,
            0 => LevelFilter::WARN,
            1 => LevelFilter::INFO,
            2 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }
    }

    /// At least one `-v`.
    pub fn is_verbose(&self) -> bool {
        self.verbose > 0
    }

    /// At least one `-q`.
    pub fn is_quiet(&self) -> bool {
        self.quiet > 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        verbosity: Verbosity,
        #[command(subcommand)]
        command: Option<Sub>,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        /// A subcommand, to see that the flags are global.
        Run,
    }

    fn parse(args: &[&str]) -> Result<Verbosity, clap::Error> {
        Cli::try_parse_from(std::iter::once("tool").chain(args.iter().copied()))
            .map(|c| c.verbosity)
    }

    #[test]
    fn each_flag_moves_the_level_one_step() {
        let levels: Vec<LevelFilter> = [
            &["-qq"][..],
            &["-q"],
            &[],
            &["-v"],
            &["--verbose", "--verbose"],
            &["-vvvv"],
        ]
        .iter()
        .map(|a| parse(a).unwrap().level())
        .collect();
        assert_eq!(
            levels,
            [
                LevelFilter::OFF,
                LevelFilter::ERROR,
                LevelFilter::WARN,
                LevelFilter::INFO,
                LevelFilter::DEBUG,
                LevelFilter::TRACE
            ]
        );
    }

    #[test]
    fn the_flags_go_before_or_after_the_subcommand() {
        assert!(parse(&["-v", "run"]).unwrap().is_verbose());
        assert!(parse(&["run", "--quiet"]).unwrap().is_quiet());
        assert!(!parse(&["run"]).unwrap().is_verbose());
    }

    #[test]
    fn verbose_and_quiet_together_are_a_usage_error() {
        let e = parse(&["-v", "-q"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
