//! The command-line conventions every binary keeps, checked from outside, as a user or a
//! script meets them: `--help` and `--version` exit 0, help names the verbosity flags and the
//! exit statuses, an unknown option or `-v` with `-q` is a usage error (exit 2) naming the
//! problem, and nothing written into a pipe carries colour codes. For the binaries' tests
//! (feature `test-support`).

use std::path::Path;
use std::process::{Command, Output};

/// Every convention `exe` (which calls itself `name`) breaks, in words; empty when it keeps
/// them all.
pub fn violations(exe: &Path, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut run = |args: &[&str]| -> Option<Output> {
        match Command::new(exe)
            .args(args)
            .env_remove(crate::LOG_ENV)
            .output()
        {
            Ok(o) => Some(o),
            Err(e) => {
                found.push(format!("{name} {args:?} did not start: {e}"));
                None
            }
        }
    };
    let outputs = [
        ("--help", run(&["--help"])),
        ("--version", run(&["--version"])),
        ("an unknown option", run(&["--no-such-option"])),
        ("-v with -q", run(&["-v", "-q"])),
    ];
    for (what, o) in &outputs {
        let Some(o) = o else { continue };
        let expected = if what.starts_with("--") { 0 } else { 2 };
        if o.status.code() != Some(expected) {
            found.push(format!(
                "{name} with {what}: exit status {:?}, not {expected}",
                o.status.code()
            ));
        }
        if o.stdout.contains(&0x1b) || o.stderr.contains(&0x1b) {
            found.push(format!(
                "{name} with {what}: escape codes written into a pipe"
            ));
        }
    }
    let text = |o: &Option<Output>, stderr: bool| {
        o.as_ref().map_or_else(String::new, |o| {
            String::from_utf8_lossy(if stderr { &o.stderr } else { &o.stdout }).into_owned()
        })
    };
    let help = text(&outputs[0].1, false);
    for needle in ["Usage:", "-v, --verbose", "-q, --quiet", "Exit status"] {
        if !help.contains(needle) {
            found.push(format!("{name} --help does not mention `{needle}`"));
        }
    }
    let version = text(&outputs[1].1, false);
    let prefix = format!("{name} ");
    if !version.starts_with(&prefix) || !version.chars().any(|c| c.is_ascii_digit()) {
        found.push(format!(
            "{name} --version printed {version:?}, not `{name} VERSION`"
        ));
    }
    let unknown = text(&outputs[2].1, true);
    if !unknown.contains("--no-such-option") {
        found.push(format!(
            "{name}: the error for an unknown option does not name it: {unknown}"
        ));
    }
    found
}
