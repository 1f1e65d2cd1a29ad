//! What every binary of the project shares on its command line: the verbosity flags
//! ([`Verbosity`]: `-v`/`--verbose`, `-q`/`--quiet`, overridden by `ADASD_LOG`) and the logging
//! set-up ([`init`]): log lines on stderr that suit where stderr goes — a terminal (colours,
//! times), a pipe or file (no colours), or the systemd journal (syslog priorities, no times) —
//! with repeated warnings and errors rate-limited ([`RateLimiter`]).
//!
//! It is a crate of its own, below everything, because `adas-calibrate` (in `adas-calibration`,
//! which `adasd` depends on) and the scenario runner (`adas-system-tests`) need it too.

#[cfg(feature = "test-support")]
pub mod conformance;
mod journal;
mod layer;
mod ratelimit;
mod verbosity;

pub use journal::stderr_is_journal;
pub use layer::{flush, init, Logging};
pub use ratelimit::{Admit, RateLimiter, Repeats};
pub use verbosity::Verbosity;

/// The environment variable whose filter, when set, decides what is logged instead of
/// `-v`/`-q` (`ADASD_LOG=info`, `ADASD_LOG=adas_io=debug,warn`: tracing's `EnvFilter` syntax).
pub const LOG_ENV: &str = "ADASD_LOG";

/// Whether stdout is a terminal: commands print per-frame lines there, and only progress lines
/// into a pipe or the journal.
pub fn stdout_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
}

/// Exit status of a helper whose device (CAN interface, camera) never came up within its
/// `--device-timeout`: distinct from 1 (failed) so that a script or unit can tell "not there"
/// from "broken".
pub const EXIT_NO_DEVICE: u8 = 4;

/// The error of a helper whose device never came up: what was tried and what to do. A binary
/// ends with [`EXIT_NO_DEVICE`] on it ([`exit_status`]).
#[derive(Debug)]
pub struct NoDevice(pub String);

impl std::fmt::Display for NoDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoDevice {}

/// The exit status of a failed command: [`EXIT_NO_DEVICE`] for a [`NoDevice`] anywhere in the
/// chain, 1 otherwise.
pub fn exit_status(error: &(dyn std::error::Error + 'static)) -> std::process::ExitCode {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<NoDevice>() {
            return std::process::ExitCode::from(EXIT_NO_DEVICE);
        }
        cause = e.source();
    }
    std::process::ExitCode::FAILURE
}

/// The `main` of the single-device helpers (`adas-canio`, `adas-camera`): logging set up from
/// the verbosity flags, then `run`; its error goes to stderr under the binary's `name`, after the
/// counts of held-back log lines, with the exit status [`exit_status`] gives it.
pub fn helper_main(
    name: &str,
    verbosity: &Verbosity,
    run: impl FnOnce() -> anyhow::Result<std::process::ExitCode>,
) -> std::process::ExitCode {
    let logging = init(verbosity);
    let result = run();
    drop(logging);
    result.unwrap_or_else(|e| {
        eprintln!("{name}: error: {e:#}");
        exit_status(e.as_ref())
    })
}

/// clap value parser for a duration in seconds: a finite number above zero.
pub fn seconds(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("`{text}` is not a positive number of seconds"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_device_has_its_own_exit_status() {
        #[derive(Debug)]
        struct Context(super::NoDevice);
        impl std::fmt::Display for Context {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("while starting")
            }
        }
        impl std::error::Error for Context {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let gone = Context(super::NoDevice("vcan9 never opened".into()));
        assert_eq!(
            super::exit_status(&gone),
            std::process::ExitCode::from(super::EXIT_NO_DEVICE)
        );
        let other = std::io::Error::other("disk full");
        assert_eq!(super::exit_status(&other), std::process::ExitCode::FAILURE);
    }

    #[test]
    fn seconds_are_positive_and_finite() {
        assert_eq!(super::seconds("2.5"), Ok(2.5));
        for bad in ["0", "-1", "inf", "NaN", "ten", ""] {
            assert!(super::seconds(bad).is_err(), "{bad}");
        }
    }
}
