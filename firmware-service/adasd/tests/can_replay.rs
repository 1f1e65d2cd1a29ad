//! `[can] input_log`: ego speed replayed from a candump log through the input supervision —
//! valid while it flows, "ego state stale" on the decision and on AEB_Status once it stops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use adas_core::can::dbc::AebStatus;
use adas_core::can::e2e::crc_ok;
use adas_io::can::candump::parse_line;
use std::path::Path;
use std::process::Command;

#[test]
fn replayed_speed_feeds_the_decider_and_its_loss_inhibits_it() {
    let dir = tempfile::tempdir().unwrap();
    let frames_dir = dir.path().join("frames");
    std::fs::create_dir_all(&frames_dir).unwrap();
    let src = Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest/frames");
    let mut names: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names.iter().take(4) {
        std::fs::copy(src.join(name), frames_dir.join(name)).unwrap();
    }
    // 36 km/h every 20 ms from 0 to 140 ms (E2E protected), then nothing. Frames at 10 fps:
    // 0, 100, 200 ms see a fresh speed; at 300 ms the last one is 160 ms old > 100 ms timeout.
    let can_log = dir.path().join("speed.log");
    std::fs::write(&can_log, common::speed_log(8)).unwrap();
    let config = common::vtest_config(&format!("dir://{}", frames_dir.display())).replace(
        "[can]\n",
        &format!("[can]\ninput_log = \"{}\"\n", can_log.display()),
    );
    let path = dir.path().join("adasd.toml");
    std::fs::write(&path, config).unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args(["run", "--config", path.to_str().unwrap(), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let events = std::fs::read_to_string(out.join("frames.jsonl")).unwrap();
    let inhibit: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["inhibit"].clone())
        .collect();
    assert_eq!(inhibit.len(), 4);
    assert!(inhibit[..3].iter().all(|v| v.is_null()), "{inhibit:?}");
    assert_eq!(inhibit[3], "ego state stale");

    // The status frames: generated decoder, E2E good, inhibit 3 + ego fault on the last frame.
    let log = std::fs::read_to_string(out.join("can.log")).unwrap();
    let status: Vec<_> = log
        .lines()
        .filter_map(|l| parse_line(l).ok())
        .map(|(_, _, f)| f)
        .filter(|f| f.id == AebStatus::ID)
        .collect();
    assert!(status.iter().all(|f| crc_ok(f, AebStatus::E2E.unwrap())));
    let decoded: Vec<AebStatus> = status
        .iter()
        .map(|f| AebStatus::decode(f.payload()).unwrap())
        .collect();
    let n = decoded.len();
    assert!(n >= 5, "{n} status frames");
    let stale = &decoded[n - 2];
    assert_eq!(
        (
            stale.aeb_mode,
            stale.aeb_status_inhibit,
            stale.aeb_fault_ego
        ),
        (3, 3, 1)
    );
    assert_eq!(decoded[n - 1].aeb_mode, 0, "off at the end");
    assert!(decoded[..n - 2].iter().all(|s| s.aeb_status_inhibit == 0));
}

#[test]
fn sigterm_stops_the_run_in_order_with_a_final_off_status() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::vtest_config(&format!(
        "dir://{}",
        common::repo().join("samples/vtest/frames").display()
    ));
    let path = dir.path().join("adasd.toml");
    std::fs::write(&path, config).unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args([
            "run",
            "--quiet",
            "--config",
            path.to_str().unwrap(),
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it has processed a few frames, then SIGTERM.
    let events = out.join("frames.jsonl");
    let start = std::time::Instant::now();
    while std::fs::metadata(&events).map_or(true, |m| m.len() == 0)
        && start.elapsed().as_secs() < 60
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    let processed = std::fs::read_to_string(&events).unwrap().lines().count();
    assert!(processed < 100, "stopped early ({processed} of 100 frames)");
    let log = std::fs::read_to_string(out.join("can.log")).unwrap();
    let (_, _, last) = parse_line(log.lines().last().unwrap()).unwrap();
    assert_eq!(last.id, AebStatus::ID);
    assert_eq!(
        AebStatus::decode(last.payload()).unwrap().aeb_mode,
        0,
        "off"
    );
}
