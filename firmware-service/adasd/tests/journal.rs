//! `adasd run` under systemd: with stderr on the journal (`JOURNAL_STREAM` names it) every log
//! line carries its syslog priority and neither time nor colour; repeated warnings come once
//! with a count; stdout into a pipe gets the start-up line and the summary, no per-frame lines
//! (unless `--verbose`) and no escape codes.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A folder of 3 unreadable frames, then 2 good ones, and a config over it.
fn config(dir: &Path) -> PathBuf {
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for i in 0..3 {
        std::fs::write(frames.join(format!("frame_{i:04}.jpg")), b"not a jpeg").unwrap();
    }
    for i in 3..5 {
        std::fs::copy(
            common::repo().join("samples/vtest/frames/frame_0000.jpg"),
            frames.join(format!("frame_{i:04}.jpg")),
        )
        .unwrap();
    }
    let path = dir.join("adasd.toml");
    let text = common::vtest_config(&format!("dir://{}", frames.display()))
        .replace("annotated_frames = true", "annotated_frames = false");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `adasd run` with stdout piped and stderr into `log`; `journal`: JOURNAL_STREAM names
/// that file, as systemd names the stream it connects.
fn run(dir: &Path, journal: bool, extra: &[&str]) -> (Output, String) {
    let config = config(dir);
    let log = dir.join("stderr.log");
    let stderr = std::fs::File::create(&log).unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    let stream = if journal {
        format!("{}:{}", meta.dev(), meta.ino())
    } else {
        // Inherited from a parent whose stderr was the journal: not ours.
        format!("{}:{}", meta.dev(), meta.ino() + 1)
    };
    let o = Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args(["run", "--config", config.to_str().unwrap(), "--out"])
        .arg(dir.join("out"))
        .args(extra)
        .env_remove("ADASD_LOG")
        .env("JOURNAL_STREAM", stream)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(o.status.success(), "{text}");
    (o, text)
}

#[test]
fn on_the_journal_lines_carry_priorities_and_repeated_warnings_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let (o, log) = run(dir.path(), true, &[]);
    assert!(!log.contains('\x1b'), "no colours: {log:?}");
    for line in log.lines() {
        let prio = line
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .and_then(|(p, _)| p.parse::<u8>().ok());
        assert!(matches!(prio, Some(0..=7)), "no priority: {line:?}");
        assert!(!line.contains(" WARN "), "no level word, no time: {line:?}");
    }
    // Three unreadable frames: one warning, and the two copies as a count (at exit: the run
    // is over within the 10-s window).
    let skips: Vec<&str> = log.lines().filter(|l| l.contains("skipping")).collect();
    assert_eq!(skips.len(), 2, "{log}");
    assert!(skips.iter().all(|l| l.starts_with("<4>")), "{log}");
    assert!(!skips[0].contains("repeated"), "{log}");
    assert!(skips[1].contains("(repeated 2 times in the last"), "{log}");

    // Stdout into a pipe: the start-up line and the summary, no line per frame.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(out.starts_with("adasd "), "start-up line first: {out}");
    assert!(out.lines().next().unwrap().contains("dir://"), "{out}");
    assert!(out.contains("frames: 2 processed, 3 skipped"), "{out}");
    assert!(
        !out.lines()
            .any(|l| l.starts_with("frame ") || l.starts_with("skipped:")),
        "{out}"
    );
}

#[test]
fn verbose_gives_info_at_its_priority_and_a_line_per_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (o, log) = run(dir.path(), true, &["--verbose"]);
    assert!(
        log.lines()
            .any(|l| l.starts_with("<6>") && l.contains("pipeline ready")),
        "{log}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("skipped: ")).count(),
        3,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("frame 0000")).count(),
        2,
        "{out}"
    );
}

#[test]
fn a_journal_stream_that_is_not_stderr_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, log) = run(dir.path(), false, &[]);
    let warning = log.lines().find(|l| l.contains("skipping")).unwrap();
    assert!(
        !warning.starts_with('<') && warning.contains(" WARN "),
        "{log}"
    );
    assert!(!log.contains('\x1b'), "a file gets no colours: {log:?}");
}
