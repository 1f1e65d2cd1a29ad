//! Simulated runs as recordings that `adasd replay --recorded-detections` replays: the
//! detections, BEV, tracks and decisions of every frame, the ego's speed and acceleration as the
//! vehicle's `VehicleSpeed` CAN frames (E2E-protected, every 20 ms, as on the bus), and the config
//! that reproduces the simulator's pipeline: its camera as a calibration file, its tracker and
//! decider parameters. A replay takes its ego input from the recorded CAN, so a braking ego is
//! replayed as it braked.

use adas_calibration::CalibrationFile;
use adas_core::aeb::AebParams;
use adas_core::can::dbc::VehicleSpeed;
use adas_core::can::e2e::Protector;
use adas_core::perception::track::TrackerParams;
use adas_record::schema::{encode_frame, FrameRecord};
use adas_system_tests::sim::{self, SimSetup};
use adas_types::CanFrame;
use std::path::{Path, PathBuf};

/// File names of the replay config and its calibration in the record folder.
const CONFIG: &str = "sim.adasd.toml";
const CALIBRATION: &str = "sim_calibration.toml";

/// Writes the replay config and the simulator camera's calibration into `dir`; returns the
/// config's path. The tracker and decider tables are read back and checked against `setup`, so
/// a replay with this config runs the simulator's parameters.
pub fn write_config(dir: &Path, setup: &SimSetup) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let calibration = CalibrationFile::from_homography(
        &setup.homography,
        setup.image_width,
        setup.image_height,
        // A fixed date: the file follows from the simulator's constants, and the same build
        // writes the same bytes.
        "2026-11-21",
        "scenario (tests/src/sim: the simulator's pinhole camera)",
    );
    let cal_path = dir.join(CALIBRATION);
    calibration
        .save(&cal_path)
        .map_err(|e| format!("cannot write {}: {e}", cal_path.display()))?;
    let pixel_sigma = setup
        .tracker
        .pixel_sigma_px
        .ok_or("the simulator's tracker has no pixel_sigma_px; the replay config needs one")?;
    // Object-list replays load no model (the detections are recorded); the key is required.
    let model = adas_system_tests::repo_root().join("models/ssd_mobilenet_v2_coco_300.toml");
    let text = format!(
        r#"# Replays simulated scenario runs (`scenario run --record`): adasd replay REC --recorded-detections.
# Written by the scenario tool with the simulator's camera, tracker and decider parameters.

[source]
# Replays take their frames from the recording.
uri = "mcap://."

[detector]
# Not loaded by object-list replays (the detections come from the recording).
model = {model:?}

[calibration]
file = "{CALIBRATION}"

[ego]
# Unused: the recordings carry the ego speed as VehicleSpeed CAN frames.
speed_kph = 0.0

[tracker]
pixel_sigma_px = {pixel_sigma:?}

# [aeb]: the decider's defaults, as the simulator runs it.
"#,
        model = model.display().to_string()
    );
    check_tables(&text, setup)?;
    let path = dir.join(CONFIG);
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The `[tracker]` and `[aeb]` tables of `config` are the simulator's parameters.
fn check_tables(config: &str, setup: &SimSetup) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Tables {
        #[serde(default)]
        tracker: TrackerParams,
        #[serde(default)]
        aeb: AebParams,
    }
    // Other tables are ignored here.
    let t: Tables = toml::from_str(config).map_err(|e| format!("replay config: {e}"))?;
    if t.tracker != setup.tracker || t.aeb != setup.aeb {
        return Err("the replay config does not reproduce the simulator's tracker/decider parameters; update replay_files.rs".into());
    }
    Ok(())
}

/// The ego's `VehicleSpeed` frames of a run: one per time-series sample (every 20 ms).
fn ego_frames(r: &sim::RunResult) -> Vec<(u64, CanFrame)> {
    let mut protector = Protector::default();
    r.samples
        .iter()
        .map(|s| {
            let mut f = VehicleSpeed {
                vs_speed: s.ego_speed_mps * 3.6,
                vs_speed_valid: 1,
                // What the inertial sensor reports: no deceleration at standstill.
                vs_long_accel: if s.ego_speed_mps > 0.0 {
                    -s.ego_decel_mps2
                } else {
                    0.0
                },
                ..Default::default()
            }
            .encode();
            protector.protect(&mut f, VehicleSpeed::E2E);
            ((s.t_s * 1e9).round() as u64, f)
        })
        .collect()
}

/// One run as a recording at `path`, naming `config` (relative to the recording's folder).
pub fn write_recording(
    path: &Path,
    label: &str,
    r: &sim::RunResult,
    config: &Path,
) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let config_name = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let metadata = [
        ("source", "scenario simulator".to_string()),
        ("scenario", label.to_string()),
        ("seed", r.seed.to_string()),
        ("config_relative", config_name),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut file =
        adas_record::writer::McapFile::create(path, &metadata, 0).map_err(|e| e.to_string())?;
    let can = ego_frames(r);
    let mut next = 0;
    for (t_ns, outcome) in &r.outcomes {
        // The CAN frames up to this frame go with it.
        let upto = next + can[next..].partition_point(|(t, _)| t <= t_ns);
        let messages = encode_frame(&FrameRecord {
            seq: outcome.decision.seq,
            t_ns: *t_ns,
            jpeg: None,
            outcome: Some(outcome),
            can_rx: &can[next..upto],
            can_tx: &[],
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
        next = upto;
        file.write_frame(&messages).map_err(|e| e.to_string())?;
    }
    file.finish().map_err(|e| e.to_string())?;
    Ok(())
}
