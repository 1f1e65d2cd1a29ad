//! What the daemon's integration tests share: the sample config made runnable from a temporary
//! folder, and a vehicle-speed CAN log.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use adas_core::can::dbc::VehicleSpeed;
use adas_core::can::e2e::Protector;
use adas_io::can::candump::format_line;
use std::path::Path;

/// The repository root (`.cargo/config.toml`).
pub fn repo() -> &'static Path {
    Path::new(env!("ADAS_REPO_ROOT"))
}

/// `samples/vtest.toml` with its model and calibration paths made absolute and its frames
/// taken from `source_uri`, so that it runs from any folder.
pub fn vtest_config(source_uri: &str) -> String {
    let root = repo().display();
    std::fs::read_to_string(repo().join("samples/vtest.toml"))
        .unwrap_or_default()
        .replace("\"dir://vtest/frames\"", &format!("{source_uri:?}"))
        .replace("../models/", &format!("{root}/models/"))
        .replace(
            "\"vtest_calibration.toml\"",
            &format!("\"{root}/samples/vtest_calibration.toml\""),
        )
}

/// A candump log of `n` E2E-protected `VehicleSpeed` frames (36 km/h, valid) 20 ms apart,
/// from 1.7e9 s on.
pub fn speed_log(n: u64) -> String {
    let mut p = Protector::default();
    let mut log = String::new();
    for i in 0..n {
        let mut f = VehicleSpeed {
            vs_speed: 36.0,
            vs_speed_valid: 1,
            ..Default::default()
        }
        .encode();
        p.protect(&mut f, VehicleSpeed::E2E);
        log += &format_line(1_700_000_000_000_000_000 + i * 20_000_000, "vcan0", &f);
        log.push('\n');
    }
    log
}
