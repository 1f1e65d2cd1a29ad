//! What the daemon's binaries keep on their command line (docs/CLI.md): help, version and
//! usage errors alike; exit status 4 from a helper whose device never came up; the `--json`
//! forms of `config check` and `record info`, with their documented fields.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn adasd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args(args)
        .current_dir(common::repo())
        .env_remove("ADASD_LOG")
        .output()
        .unwrap()
}

fn stdout_json(o: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn every_binary_keeps_the_conventions() {
    for (exe, name) in [
        (env!("CARGO_BIN_EXE_adasd"), "adasd"),
        (env!("CARGO_BIN_EXE_adas-canio"), "adas-canio"),
        (env!("CARGO_BIN_EXE_adas-camera"), "adas-camera"),
    ] {
        assert_eq!(
            adas_cli::conformance::violations(Path::new(exe), name),
            Vec::<String>::new()
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn adas_canio_exits_4_when_its_interface_never_opens() {
    let o = Command::new(env!("CARGO_BIN_EXE_adas-canio"))
        .args(["--interface", "adasnone0", "--device-timeout", "0.3"])
        .env_remove("ADASD_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("`adasnone0` could not be opened") && err.contains("ip link"),
        "says what to do: {err}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn adas_camera_exits_4_when_its_device_never_appears() {
    let o = Command::new(env!("CARGO_BIN_EXE_adas-camera"))
        .args(["v4l2:///dev/adas-none", "--device-timeout", "0.3"])
        .env_remove("ADASD_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("/dev/adas-none: the device did not appear") && err.contains("v4l2-ctl"),
        "says what to do: {err}"
    );
}

#[test]
fn config_check_json_reports_the_config_its_findings_and_a_config_that_does_not_load() {
    let o = adasd(&["config", "check", "--json", "samples/vtest.toml"]);
    assert!(o.status.success());
    let v = stdout_json(&o);
    assert_eq!(v["file"], "samples/vtest.toml");
    assert_eq!(v["ok"], true);
    assert_eq!(
        v["source"], "dir://samples/vtest/frames",
        "resolved against the file"
    );
    assert!(v["model"].as_str().unwrap().ends_with("on tract"), "{v}");
    assert_eq!(v["aeb_acts_on"][0], "pedestrian");
    assert_eq!(
        (v["errors"].as_u64(), v["warnings"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(v["findings"], serde_json::json!([]));

    // A warning passes: a SocketCAN interface that does not exist.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("adasd.toml");
    let text = common::vtest_config(&format!(
        "dir://{}",
        common::repo().join("samples/vtest/frames").display()
    ))
    .replace(
        "interface = \"can0\"",
        "mode = \"socketcan\"\ninterface = \"adasnone0\"",
    );
    std::fs::write(&config, text).unwrap();
    let o = adasd(&["config", "check", "--json", config.to_str().unwrap()]);
    assert!(o.status.success());
    let v = stdout_json(&o);
    assert_eq!(
        (v["ok"].as_bool(), v["warnings"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(v["findings"][0]["severity"], "warning");
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("adasnone0"),
        "{v}"
    );

    // A config that does not load: still one JSON object, the error in it, exit status 1.
    let missing = dir.path().join("missing.toml");
    let o = adasd(&["config", "check", "--json", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let v = stdout_json(&o);
    assert_eq!(v["ok"], false);
    assert_eq!(v["model"], serde_json::Value::Null);
    assert_eq!(v["errors"], 1);
    assert_eq!(v["findings"][0]["severity"], "error");
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("missing.toml"),
        "{v}"
    );
}

#[test]
fn record_info_json_has_the_documented_fields_and_the_damage() {
    let o = adasd(&["record", "info", "--json", "samples/vtest.mcap"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = stdout_json(&o);
    assert_eq!(v["file"], "samples/vtest.mcap");
    assert_eq!(v["frames"], 40);
    assert_eq!(v["camera_frames"], 40);
    assert_eq!(v["t_first_s"], 0.0);
    assert_eq!(v["t_last_s"], 3.9);
    for key in ["decision_frames", "can_rx", "can_tx"] {
        assert!(v[key].is_u64(), "{key}: {v}");
    }
    assert!(
        v["topics"]
            .as_object()
            .unwrap()
            .values()
            .all(|n| n.is_u64()),
        "{v}"
    );
    assert!(v["metadata"].is_object(), "{v}");
    assert!(
        !v["metadata"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.ends_with("_toml")),
        "embedded files left out: {v}"
    );
    assert_eq!(v["damage"], serde_json::json!([]));

    // A damaged copy: the same object with the damage listed, exit status 3.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(common::repo().join("samples/vtest.mcap")).unwrap();
    let k = bytes.len() / 10;
    bytes[k] ^= 0xFF;
    let damaged = dir.path().join("damaged.mcap");
    std::fs::write(&damaged, &bytes).unwrap();
    let o = adasd(&["record", "info", "--json", damaged.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let v = stdout_json(&o);
    assert_eq!(v["frames"], 39);
    let d = &v["damage"][0];
    let (start, end) = (d["start"].as_u64().unwrap(), d["end"].as_u64().unwrap());
    assert!((start..end).contains(&(k as u64)), "{d} (byte {k})");
    assert!(d["reason"].as_str().unwrap().contains("CRC"), "{d}");
    assert!(d["description"].as_str().unwrap().contains("chunk"), "{d}");
}
