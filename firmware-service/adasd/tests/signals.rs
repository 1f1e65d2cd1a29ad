//! Signals: SIGHUP ends a run like SIGTERM (status Off last on CAN); after SIGKILL every frame
//! that was completed is in the logs and the recording, and nothing is torn.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use adas_core::can::dbc::AebStatus;
use adas_core::can::messages::{AEB_STATUS_ID, AEB_WARNING_ID};
use adas_io::can::candump::parse_line;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `adasd run` over the whole vtest sequence (100 frames: far more than a test waits for),
/// recording every frame.
fn start(dir: &Path) -> Child {
    let frames = common::repo().join("samples/vtest/frames");
    let config = common::vtest_config(&format!("dir://{}", frames.display()))
        + &format!(
            "\n[record]\nmode = \"continuous\"\ndir = {:?}\n",
            dir.join("recordings").display().to_string()
        );
    let path = dir.join("adasd.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args(["run", "--quiet", "--config"])
        .arg(&path)
        .arg("--out")
        .arg(dir.join("out"))
        .env("ADASD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the decision log has `n` lines.
fn wait_for_frames(dir: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let lines =
            std::fs::read_to_string(dir.join("out/frames.jsonl")).map_or(0, |t| t.lines().count());
        if lines >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("fewer than {n} frames processed in 120 s");
}

fn can_log(dir: &Path) -> Vec<adas_types::CanFrame> {
    let text = std::fs::read_to_string(dir.join("out/can.log")).unwrap();
    text.lines()
        .map(|l| {
            parse_line(l)
                .unwrap_or_else(|e| panic!("torn line {l:?}: {e}"))
                .2
        })
        .collect()
}

#[test]
fn sighup_ends_the_run_with_status_off() {
    let dir = tempfile::tempdir().unwrap();
    let child = start(dir.path());
    wait_for_frames(dir.path(), 3);
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let o = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("frames: "),
        "the summary is printed: {stdout}"
    );
    let last = *can_log(dir.path()).last().unwrap();
    assert_eq!(last.id, AEB_STATUS_ID);
    assert_eq!(
        AebStatus::decode(last.payload()).unwrap().aeb_mode,
        0,
        "Off"
    );
}

#[test]
fn after_sigkill_every_completed_frame_is_kept_and_nothing_is_torn() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path());
    wait_for_frames(dir.path(), 5);
    child.kill().unwrap();
    child.wait().unwrap();

    let events = std::fs::read_to_string(dir.path().join("out/frames.jsonl")).unwrap();
    for line in events.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("torn decision line {line:?}: {e}"));
    }
    let decided = events.lines().count();
    assert!(decided >= 5);
    // One warning frame per processed frame; can.log is written first, so the frame in hand
    // at the kill may be in it and not yet in frames.jsonl.
    let warnings = can_log(dir.path())
        .iter()
        .filter(|f| f.id == AEB_WARNING_ID)
        .count();
    assert!(
        warnings == decided || warnings == decided + 1,
        "{warnings} warnings for {decided} decisions"
    );
    // The recording has no footer, but every frame written before the kill reads back.
    let recordings: Vec<_> = std::fs::read_dir(dir.path().join("recordings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(recordings.len(), 1);
    let recording = adas_record::reader::Recording::open_without_images(&recordings[0]).unwrap();
    assert!(
        recording.frames.len() + 1 >= decided,
        "{} recorded frames for {decided} decisions",
        recording.frames.len()
    );
}
