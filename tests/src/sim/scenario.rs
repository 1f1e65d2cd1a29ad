//! Scenario files (TOML): the ego, the targets, scripted false positives, the perception-noise
//! model and the pass criterion. One file may sweep the ego speed (`speed_kph = [10, 20, 30]`),
//! each speed is a *variant*. Every impossible value is an error naming the file and the key.
//!
//! ```toml
//! name = "CCRs 100 %"
//! expect = "avoid"            # avoid | mitigate | avoid_or_mitigate | no_activation
//! seeds = 50                  # runs per variant (noise seeds)
//! duration_s = 12.0           # default: start TTC + 5 s, or 12 s
//! fcw_lead_required = true    # every braking episode: continuous warning ≥ 0.8 s before it
//!                             # unless excused (UN R152; `adas_core::aeb::episodes`)
//! max_impact_kph = 20.0       # for mitigate / avoid_or_mitigate
//!
//! [ego]
//! speed_kph = [10, 20, 30, 40, 50]
//!
//! [[target]]
//! class = "car"               # car | pedestrian | cyclist | truck_bus | motorcycle
//! start_ttc_s = 6.0           # or gap_m (rear edge ahead of the bumper), or x_m (footprint
//!                             # centre), or impact_at_s + impact_y_m (where the target's centre
//!                             # would be hit at constant speeds)
//! y_m = 0.0                   # lateral centre, m, positive left
//! speed_kph = 0.0
//! heading_deg = 0.0           # direction of travel: 0 same as ego, 180 oncoming, 90 to the left
//! accel_mps2 = 0.0            # from accel_from_s on, until it stops or reaches max_speed_kph
//! accel_from_s = 0.0
//! max_speed_kph = 250.0
//! class_sequence = ["car", "truck_bus"]   # the label the detector reports, frame by frame,
//!                             # cycled (default: always `class`); `class` stays the truth
//!                             # (size, detection range)
//!
//! [[false_positive]]          # one-frame ghost detection
//! t_s = 2.0
//! x_m = 15.0
//! y_m = 0.0
//! class = "pedestrian"
//!
//! [perception]                # noise model overrides (defaults in `NoiseModel`)
//! dropout = 0.12
//! ```

use adas_plugins::manifest::RoadUser;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scenario {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("scenario {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// What must happen for a run to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// No contact.
    Avoid,
    /// Contact allowed at no more than `max_impact_kph` (relative).
    Mitigate,
    /// Either.
    AvoidOrMitigate,
    /// No warning and no braking, ever.
    NoActivation,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Avoid => "avoid",
            Expect::Mitigate => "mitigate",
            Expect::AvoidOrMitigate => "avoid or mitigate",
            Expect::NoActivation => "no activation",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(f64),
    Many(Vec<f64>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    expect: Expect,
    seeds: Option<u32>,
    duration_s: Option<f64>,
    fcw_lead_required: Option<bool>,
    max_impact_kph: Option<f64>,
    ego: RawEgo,
    #[serde(default)]
    target: Vec<RawTarget>,
    #[serde(default)]
    false_positive: Vec<RawFalsePositive>,
    #[serde(default)]
    perception: NoiseModel,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEgo {
    speed_kph: OneOrMany,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    class: RoadUser,
    start_ttc_s: Option<f64>,
    gap_m: Option<f64>,
    x_m: Option<f64>,
    impact_at_s: Option<f64>,
    impact_y_m: Option<f64>,
    #[serde(default)]
    y_m: f64,
    #[serde(default)]
    speed_kph: f64,
    #[serde(default)]
    heading_deg: f64,
    #[serde(default)]
    accel_mps2: f64,
    #[serde(default)]
    accel_from_s: f64,
    max_speed_kph: Option<f64>,
    length_m: Option<f64>,
    width_m: Option<f64>,
    height_m: Option<f64>,
    #[serde(default)]
    class_sequence: Vec<RoadUser>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFalsePositive {
    t_s: f64,
    x_m: f64,
    #[serde(default)]
    y_m: f64,
    class: RoadUser,
}

/// The perception-noise model (a detector seen from the outside).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseModel {
    /// Camera frame rate, Hz.
    pub fps: f64,
    /// Capture → detections available, ms.
    pub latency_ms: f64,
    /// Probability that a visible road user is not detected in a frame.
    pub dropout: f64,
    /// Box-edge jitter (1σ) at 0 m, px …
    pub jitter_px: f64,
    /// … growing by this much per metre of distance, px/m.
    pub jitter_px_per_m: f64,
    /// Probability of one random false positive per frame (anywhere on the ground ahead).
    pub false_positive_rate: f64,
    /// Cars/trucks are detected up to this distance, m.
    pub car_range_m: f64,
    /// Pedestrians/cyclists up to this distance, m.
    pub vru_range_m: f64,
    /// Boxes smaller than this are not detected, px.
    pub min_box_height_px: f64,
}

impl Default for NoiseModel {
    fn default() -> Self {
        Self {
            fps: 20.0,
            latency_ms: 100.0,
            dropout: 0.12,
            jitter_px: 0.5,
            jitter_px_per_m: 0.015,
            false_positive_rate: 0.05,
            car_range_m: 100.0,
            vru_range_m: 50.0,
            min_box_height_px: 10.0,
        }
    }
}

/// One target, resolved for a variant (world frame at t = 0: ego front bumper at the origin,
/// x along the road, y left).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What the target is (its size and detection range follow from it).
    pub class: RoadUser,
    /// The label the detector reports in camera frame k is `class_sequence[k % len]` (a real
    /// detector's class noise, e.g. `car` ↔ `truck_bus`); empty: always `class`.
    pub class_sequence: Vec<RoadUser>,
    /// Footprint centre at t = 0, m.
    pub x_m: f64,
    pub y_m: f64,
    pub speed_mps: f64,
    pub heading_rad: f64,
    pub accel_mps2: f64,
    pub accel_from_s: f64,
    pub max_speed_mps: f64,
    pub length_m: f64,
    pub width_m: f64,
    pub height_m: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FalsePositive {
    pub t_s: f64,
    pub x_m: f64,
    pub y_m: f64,
    pub class: RoadUser,
}

/// One runnable variant of a scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub file: PathBuf,
    pub name: String,
    pub expect: Expect,
    pub seeds: u32,
    pub duration_s: f64,
    pub fcw_lead_required: bool,
    pub max_impact_kph: f64,
    pub ego_speed_mps: f64,
    pub targets: Vec<Target>,
    pub false_positives: Vec<FalsePositive>,
    pub noise: NoiseModel,
}

impl Scenario {
    /// Name with the variant, e.g. `CCRs 100 % @ 40 km/h`.
    pub fn label(&self) -> String {
        format!("{} @ {:.0} km/h", self.name, self.ego_speed_mps * 3.6)
    }
}

/// Default footprint (length, width, height) per class, m.
pub fn default_dims(class: RoadUser) -> (f64, f64, f64) {
    match class {
        RoadUser::Pedestrian => (0.5, 0.6, 1.8),
        RoadUser::Cyclist => (1.8, 0.6, 1.8),
        RoadUser::Motorcycle => (2.1, 0.8, 1.5),
        RoadUser::TruckBus => (10.0, 2.5, 3.5),
        RoadUser::Car | RoadUser::Other | RoadUser::Ignored => (4.5, 1.8, 1.5),
    }
}

/// Loads a scenario file and expands it into its variants.
pub fn load(path: &Path) -> Result<Vec<Scenario>, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses scenario text (`path` only names it in errors).
pub fn parse(text: &str, path: &Path) -> Result<Vec<Scenario>, ScenarioError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| ScenarioError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let invalid = |key: String, message: String| ScenarioError::Invalid {
        path: path.to_path_buf(),
        key,
        message,
    };
    let finite = |key: &str, v: f64| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(invalid(
                key.to_string(),
                format!("{v} is not a finite number"),
            ))
        }
    };
    let non_negative = |key: &str, v: f64| {
        finite(key, v)?;
        if v < 0.0 {
            Err(invalid(
                key.to_string(),
                format!("{v} must not be negative"),
            ))
        } else {
            Ok(v)
        }
    };
    let positive = |key: &str, v: f64| {
        finite(key, v)?;
        if v <= 0.0 {
            Err(invalid(key.to_string(), format!("{v} must be positive")))
        } else {
            Ok(v)
        }
    };

    if raw.name.trim().is_empty() {
        return Err(invalid("name".into(), "must not be empty".into()));
    }
    let speeds = match &raw.ego.speed_kph {
        OneOrMany::One(v) => vec![*v],
        OneOrMany::Many(v) => v.clone(),
    };
    if speeds.is_empty() {
        return Err(invalid(
            "ego.speed_kph".into(),
            "needs at least one speed".into(),
        ));
    }
    for (i, v) in speeds.iter().enumerate() {
        let key = if speeds.len() > 1 {
            format!("ego.speed_kph[{i}]")
        } else {
            "ego.speed_kph".into()
        };
        non_negative(&key, *v)?;
        if *v > 250.0 {
            return Err(invalid(key, format!("{v} km/h is beyond 250 km/h")));
        }
    }
    let seeds = raw.seeds.unwrap_or(1);
    if seeds == 0 {
        return Err(invalid("seeds".into(), "must be at least 1".into()));
    }
    if let Some(d) = raw.duration_s {
        positive("duration_s", d)?;
        if d > 120.0 {
            return Err(invalid(
                "duration_s".into(),
                format!("{d} s is longer than 120 s"),
            ));
        }
    }
    let max_impact_kph = match raw.max_impact_kph {
        Some(v) => non_negative("max_impact_kph", v)?,
        None => 0.0,
    };
    let n = &raw.perception;
    positive("perception.fps", n.fps)?;
    non_negative("perception.latency_ms", n.latency_ms)?;
    for (key, p) in [
        ("perception.dropout", n.dropout),
        ("perception.false_positive_rate", n.false_positive_rate),
    ] {
        non_negative(key, p)?;
        if p > 1.0 {
            return Err(invalid(
                key.into(),
                format!("{p} is a probability, must be ≤ 1"),
            ));
        }
    }
    non_negative("perception.jitter_px", n.jitter_px)?;
    non_negative("perception.jitter_px_per_m", n.jitter_px_per_m)?;
    positive("perception.car_range_m", n.car_range_m)?;
    positive("perception.vru_range_m", n.vru_range_m)?;
    non_negative("perception.min_box_height_px", n.min_box_height_px)?;
    for (i, t) in raw.target.iter().enumerate() {
        let k = |f: &str| format!("target[{i}].{f}");
        non_negative(&k("speed_kph"), t.speed_kph)?;
        finite(&k("y_m"), t.y_m)?;
        finite(&k("heading_deg"), t.heading_deg)?;
        finite(&k("accel_mps2"), t.accel_mps2)?;
        non_negative(&k("accel_from_s"), t.accel_from_s)?;
        if let Some(v) = t.max_speed_kph {
            non_negative(&k("max_speed_kph"), v)?;
        }
        for (f, v) in [
            ("length_m", t.length_m),
            ("width_m", t.width_m),
            ("height_m", t.height_m),
        ] {
            if let Some(v) = v {
                positive(&k(f), v)?;
            }
        }
        let placements = [
            t.start_ttc_s.is_some(),
            t.gap_m.is_some(),
            t.x_m.is_some(),
            t.impact_at_s.is_some(),
        ];
        if placements.iter().filter(|b| **b).count() != 1 {
            return Err(invalid(
                format!("target[{i}]"),
                "give exactly one of start_ttc_s, gap_m, x_m, impact_at_s".into(),
            ));
        }
        if let Some(v) = t.start_ttc_s {
            positive(&k("start_ttc_s"), v)?;
        }
        if let Some(v) = t.gap_m {
            non_negative(&k("gap_m"), v)?;
        }
        if let Some(v) = t.x_m {
            finite(&k("x_m"), v)?;
        }
        if let Some(v) = t.impact_at_s {
            positive(&k("impact_at_s"), v)?;
        }
        if let Some(v) = t.impact_y_m {
            finite(&k("impact_y_m"), v)?;
        }
        if t.class == RoadUser::Ignored {
            return Err(invalid(k("class"), "`ignored` is not a road user".into()));
        }
        if t.class_sequence.contains(&RoadUser::Ignored) {
            return Err(invalid(
                k("class_sequence"),
                "`ignored` is not a road user".into(),
            ));
        }
    }
    for (i, f) in raw.false_positive.iter().enumerate() {
        non_negative(&format!("false_positive[{i}].t_s"), f.t_s)?;
        positive(&format!("false_positive[{i}].x_m"), f.x_m)?;
        finite(&format!("false_positive[{i}].y_m"), f.y_m)?;
    }

    let mut out = Vec::new();
    for v_kph in speeds {
        let v_e = v_kph / 3.6;
        let mut targets = Vec::new();
        let mut start_ttc: Option<f64> = None;
        for (i, t) in raw.target.iter().enumerate() {
            let (dl, dw, dh) = default_dims(t.class);
            let (length, width, height) = (
                t.length_m.unwrap_or(dl),
                t.width_m.unwrap_or(dw),
                t.height_m.unwrap_or(dh),
            );
            let heading = t.heading_deg.to_radians();
            let v_t = t.speed_kph / 3.6;
            let (vx, vy) = (v_t * heading.cos(), v_t * heading.sin());
            // Half extent of the footprint along x (for gaps measured to the near edge).
            let half_x = 0.5 * (length * heading.cos().abs() + width * heading.sin().abs());
            let x = if let Some(ttc) = t.start_ttc_s {
                let closing = v_e - vx;
                if closing <= 0.1 {
                    return Err(invalid(
                        format!("target[{i}].start_ttc_s"),
                        format!("the target does not approach at ego {v_kph} km/h; use gap_m"),
                    ));
                }
                start_ttc = Some(start_ttc.map_or(ttc, |s: f64| s.max(ttc)));
                ttc * closing + half_x
            } else if let Some(g) = t.gap_m {
                g + half_x
            } else if let Some(x) = t.x_m {
                x
            } else {
                let at = t.impact_at_s.unwrap_or(0.0);
                start_ttc = Some(start_ttc.map_or(at, |s: f64| s.max(at)));
                v_e * at + half_x - vx * at
            };
            let y = match t.impact_at_s {
                Some(at) => t.impact_y_m.unwrap_or(0.0) - vy * at,
                None => t.y_m,
            };
            targets.push(Target {
                class: t.class,
                class_sequence: t.class_sequence.clone(),
                x_m: x,
                y_m: y,
                speed_mps: v_t,
                heading_rad: heading,
                accel_mps2: t.accel_mps2,
                accel_from_s: t.accel_from_s,
                max_speed_mps: t.max_speed_kph.map_or(250.0 / 3.6, |v| v / 3.6),
                length_m: length,
                width_m: width,
                height_m: height,
            });
        }
        let duration = raw
            .duration_s
            .unwrap_or_else(|| start_ttc.map_or(12.0, |s| (s + 5.0).min(60.0)));
        out.push(Scenario {
            file: path.to_path_buf(),
            name: raw.name.clone(),
            expect: raw.expect,
            seeds,
            duration_s: duration,
            fcw_lead_required: raw.fcw_lead_required.unwrap_or(false),
            max_impact_kph,
            ego_speed_mps: v_e,
            targets,
            false_positives: raw
                .false_positive
                .iter()
                .map(|f| FalsePositive {
                    t_s: f.t_s,
                    x_m: f.x_m,
                    y_m: f.y_m,
                    class: f.class,
                })
                .collect(),
            noise: raw.perception,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const OK: &str = r#"
name = "t"
expect = "avoid"
[ego]
speed_kph = [10, 20]
[[target]]
class = "car"
start_ttc_s = 5
"#;

    #[test]
    fn expands_speed_sweep_and_places_by_ttc() {
        let v = parse(OK, Path::new("s.toml")).unwrap();
        assert_eq!(v.len(), 2);
        // 20 km/h = 5.556 m/s, 5 s → 27.78 m to the rear edge, + 2.25 m to the centre.
        assert!((v[1].targets[0].x_m - (5.0 * 20.0 / 3.6 + 2.25)).abs() < 1e-9);
        assert_eq!(v[1].duration_s, 10.0);
    }

    #[test]
    fn a_target_carries_its_label_sequence_and_keeps_its_true_class() {
        let v = parse(
            &format!("{OK}class_sequence = [\"car\", \"truck_bus\"]\n"),
            Path::new("s.toml"),
        )
        .unwrap();
        let t = &v[0].targets[0];
        assert_eq!(t.class, RoadUser::Car);
        assert_eq!(t.class_sequence, [RoadUser::Car, RoadUser::TruckBus]);
        assert_eq!(t.length_m, default_dims(RoadUser::Car).0);
        assert!(parse(OK, Path::new("s.toml")).unwrap()[0].targets[0]
            .class_sequence
            .is_empty());
    }

    #[test]
    fn impossible_values_name_file_and_key() {
        let cases = [
            (OK.replace("[10, 20]", "[10, -20]"), "ego.speed_kph[1]"),
            (OK.replace("[10, 20]", "nan"), "ego.speed_kph"),
            (format!("{OK}speed_kph = -3\n"), "target[0].speed_kph"),
            (format!("{OK}width_m = 0\n"), "target[0].width_m"),
            (
                format!("{OK}[perception]\ndropout = 1.5\n"),
                "perception.dropout",
            ),
            (format!("{OK}[perception]\nfps = 0\n"), "perception.fps"),
            (format!("{OK}gap_m = 10\n"), "target[0]"),
            (
                format!("{OK}class_sequence = [\"car\", \"ignored\"]\n"),
                "target[0].class_sequence",
            ),
        ];
        for (text, key) in cases {
            let err = parse(&text, Path::new("dir/bad.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("dir/bad.toml") && err.contains(&format!("`{key}`")),
                "{key}: {err}"
            );
        }
        let err = parse(&OK.replace("expect", "expekt"), Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml") && err.contains("expekt"), "{err}");
    }
}
