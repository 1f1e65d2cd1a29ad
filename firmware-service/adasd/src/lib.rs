//! adasd: camera → detector → bird's-eye view → decision → CAN, as a daemon and its command
//! line. The parts are crates of their own (`adas-types`, `adas-core`, `adas-detect`,
//! `adas-gpu`, `adas-record`, `adas-io`, `adas-render`); this crate maps the config onto them
//! and runs the loop.

pub mod benchmark;
pub mod check;
pub mod config;
pub mod eval;
pub mod metrics;
pub mod record;
pub mod service;

/// `println!` that returns the error instead of panicking, so that a closed stdout
/// (`adasd record info … | head`) ends the command quietly (see `is_broken_pipe`).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// The reader of our stdout went away: not an error of ours (ripgrep's behaviour: exit 0).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
