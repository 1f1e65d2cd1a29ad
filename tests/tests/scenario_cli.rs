//! The `scenario` command line: the conventions every binary keeps (docs/CLI.md) and its own
//! exit statuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

const EXE: &str = env!("CARGO_BIN_EXE_scenario");

#[test]
fn scenario_keeps_the_conventions() {
    assert_eq!(
        adas_cli::conformance::violations(Path::new(EXE), "scenario"),
        Vec::<String>::new()
    );
}

#[test]
fn bad_input_is_exit_status_2_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let o = Command::new(EXE)
        .args(["run", "--out"])
        .arg(dir.path().join("out"))
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing.toml"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(EXE)
        .args(["run", "--seeds", "0", "x.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "--seeds must be positive");
}
