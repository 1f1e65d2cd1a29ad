//! The quick start's real drive (samples/udacity.toml): 8.8 s of freeway at 119 km/h from a car,
//! the video file decoded in-process, the COCO SSD on the CPU, the ego speed from a CAN log. Cars
//! pass in the lanes to the left and the ego lane is clear: the service must see the cars, take
//! the speed from CAN, and raise no warning and no braking.
#![cfg(feature = "video")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_freeway_drive_sees_the_cars_uses_the_can_speed_and_raises_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args(["run", "--quiet", "--config"])
        .arg(Path::new(env!("ADAS_REPO_ROOT")).join("samples/udacity.toml"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("frames: 221 processed, 0 skipped"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warnings: 0 (in 0 frames); braking in 0 frames"),
        "{stdout}"
    );

    let events: Vec<serde_json::Value> = std::fs::read_to_string(out.join("frames.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 221);
    let mut frames_with_cars = 0;
    for (i, e) in events.iter().enumerate() {
        // Capture times from the file: 25 fps.
        assert_eq!(e["t_ns"].as_u64(), Some(i as u64 * 40_000_000), "{e}");
        assert_eq!(e["stage"], "none", "frame {i}: {e}");
        assert_eq!(e["inhibit"], serde_json::Value::Null, "frame {i}: {e}");
        // The decider ran on the CAN sample (E2E-checked, supervised), not the config constant.
        let ego = &e["ego"];
        assert_eq!(ego["source"], "can", "frame {i}: {ego}");
        assert_eq!(ego["valid"], true, "frame {i}: {ego}");
        assert_eq!(ego["speed_kph"].as_f64(), Some(119.0), "frame {i}: {ego}");
        let cars = e["detections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["class"] == "car" && d["ground"].is_array())
            .count();
        frames_with_cars += usize::from(cars > 0);
    }
    // Cars are on screen in the lanes to the left throughout the clip.
    // (195 of 221 frames when this test was written.)
    assert!(
        frames_with_cars >= 180,
        "{frames_with_cars} frames with cars"
    );
    assert_eq!(std::fs::read_dir(out.join("frames")).unwrap().count(), 221);
}
