//! Failing outputs never stop the decision path: a log on a full disk, an output folder or a
//! recording folder that cannot be created. The run goes on, every other output is complete,
//! the status on CAN carries `AEB_FaultOutput`, and the summary names what failed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use adas_core::can::dbc::AebStatus;
use adas_core::can::messages::AEB_STATUS_ID;
use adas_io::can::candump::parse_line;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn adasd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args(args)
        .env("ADASD_LOG", "warn")
        .output()
        .unwrap()
}

/// Three sample frames; `extra` is appended to the config (e.g. a `[record]` table).
fn config(dir: &Path, extra: &str) -> PathBuf {
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    for name in ["frame_0000.jpg", "frame_0001.jpg", "frame_0002.jpg"] {
        std::fs::copy(
            common::repo().join("samples/vtest/frames").join(name),
            frames.join(name),
        )
        .unwrap();
    }
    let text = common::vtest_config(&format!("dir://{}", frames.display())) + extra;
    let path = dir.join("adasd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `run` with one output that cannot be written: the run completes all three frames, and the
/// summary names the output. Returns stderr.
fn run_despite_failing(config: &Path, out: &Path, failing: &[&str]) -> String {
    let (o, stdout, stderr) = run(config, out);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains("frames: 3 processed, 0 skipped"),
        "{stdout}"
    );
    for output in failing {
        assert!(
            stdout.contains(&format!("output failed: {output} could not be written for")),
            "{output}: {stdout}"
        );
    }
    stderr
}

/// A `[record]` table recording every frame into `dir`.
fn continuous_recording(dir: &Path) -> String {
    format!(
        "\n[record]\nmode = \"continuous\"\ndir = {:?}\n",
        dir.display().to_string()
    )
}

fn run(config: &Path, out: &Path) -> (Output, String, String) {
    let o = adasd(&[
        "run",
        "--quiet",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    (o, stdout, stderr)
}

/// The `AEB_FaultOutput` bit of every status frame in a candump log, Off excluded.
fn output_fault_bits(can_log: &str) -> Vec<bool> {
    can_log
        .lines()
        .map(|l| parse_line(l).unwrap().2)
        .filter(|f| f.id == AEB_STATUS_ID)
        .map(|f| AebStatus::decode(f.payload()).unwrap())
        .filter(|s| s.aeb_mode != 0)
        .map(|s| s.aeb_fault_output == 1)
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn a_log_on_a_full_disk_stops_neither_the_run_nor_the_other_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // Every write to /dev/full fails with ENOSPC, as on a full disk.
    std::os::unix::fs::symlink("/dev/full", out.join("frames.jsonl")).unwrap();

    let stderr = run_despite_failing(&config, &out, &["frames.jsonl"]);
    assert!(
        stderr.contains("frames.jsonl") && stderr.contains("No space left on device"),
        "the log names the file and the reason: {stderr}"
    );
    assert!(stderr.contains("the pipeline goes on"), "{stderr}");
    // The CAN log is complete, and from the frame after the first failure on, every status
    // says that an output fails.
    let can_log = std::fs::read_to_string(out.join("can.log")).unwrap();
    assert_eq!(
        output_fault_bits(&can_log),
        [false, true, true],
        "{can_log}"
    );
    assert_eq!(std::fs::read_dir(out.join("frames")).unwrap().count(), 3);
}

#[test]
fn an_output_folder_that_cannot_be_created_leaves_the_recording_complete() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    let config = config(dir.path(), &continuous_recording(&recordings));
    // A file where the output folder should be: nothing can be created under it.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let stderr = run_despite_failing(
        &config,
        &blocker.join("out"),
        &["can.log", "frames.jsonl", "annotated frames"],
    );
    assert!(stderr.contains("cannot write"), "{stderr}");
    // The recording holds every frame, with the fault on the statuses it recorded.
    let files: Vec<_> = std::fs::read_dir(&recordings)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let recording = adas_record::reader::Recording::open_without_images(&files[0]).unwrap();
    assert_eq!(recording.frames.len(), 3);
    let statuses: Vec<bool> = recording
        .can_tx
        .iter()
        .filter(|(_, f)| f.id == AEB_STATUS_ID)
        .map(|(_, f)| AebStatus::decode(f.payload()).unwrap())
        .filter(|s| s.aeb_mode != 0)
        .map(|s| s.aeb_fault_output == 1)
        .collect();
    assert_eq!(statuses, [false, true, true]);
}

#[test]
fn a_recording_folder_that_cannot_be_created_leaves_the_logs_complete() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let config = config(
        dir.path(),
        &continuous_recording(&blocker.join("recordings")),
    );
    let out = dir.path().join("out");
    let stderr = run_despite_failing(&config, &out, &["recording"]);
    assert!(
        stderr.contains("recording") && stderr.contains("cannot create"),
        "{stderr}"
    );
    let events = std::fs::read_to_string(out.join("frames.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 3);
    let can_log = std::fs::read_to_string(out.join("can.log")).unwrap();
    assert_eq!(
        output_fault_bits(&can_log),
        [false, true, true],
        "{can_log}"
    );
}

/// `adasd detect … | head -1`: the reader goes away; the command ends quietly, no panic.
#[test]
fn a_closed_stdout_ends_a_command_without_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args(["detect", "--model"])
        .arg(common::repo().join("models/nanodet_m_coco_416.toml"))
        .arg(common::repo().join("samples/images/dog.jpg"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the model has even loaded: every line the command prints meets EPIPE.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(o.status.success(), "{stderr}");
}

/// `[output] logs = false` (the installed service's setting): no `can.log`, no `frames.jsonl`,
/// the run and its recording are complete and the summary still counts the CAN frames sent.
#[test]
fn without_logs_the_run_writes_only_what_it_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    let config = config(dir.path(), &continuous_recording(&recordings));
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[output]\n", "[output]\nlogs = false\n")
        .replace("annotated_frames = true", "annotated_frames = false");
    std::fs::write(&config, text).unwrap();
    let out = dir.path().join("out");
    let (o, stdout, stderr) = run(&config, &out);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains("frames: 3 processed, 0 skipped"),
        "{stdout}"
    );
    assert!(
        !out.join("can.log").exists() && !out.join("frames.jsonl").exists(),
        "{stdout}"
    );
    // Three statuses (one per frame: the status period is shorter than the frame period),
    // the closing Off and any warnings.
    let sent: u64 = stdout
        .split("output: ")
        .nth(1)
        .and_then(|s| s.split(" CAN frames sent").next())
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no CAN frame count: {stdout}"));
    let recording = std::fs::read_dir(&recordings)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let recording = adas_record::reader::Recording::open_without_images(&recording.path()).unwrap();
    assert_eq!(recording.frames.len(), 3);
    assert_eq!(sent, recording.can_tx.len() as u64 + 1, "{stdout}");
}
