//! The plan cache: measured convolution algorithms stored per model, input shape, precision,
//! GPU, driver, cuDNN, NVRTC and engine version. Any difference rebuilds the plan (and says
//! which field changed); a stale plan is never used.

use super::device::DeviceIdentity;
use super::network::Choices;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanKey {
    /// adasd version and a hash of every kernel source.
    pub engine: String,
    pub model_sha256: String,
    /// SHA-256 of the INT8 calibration table a float model was quantized with.
    #[serde(default)]
    pub calibration_sha256: Option<String>,
    pub input_shape: Vec<usize>,
    pub precision: String,
    pub device: DeviceIdentity,
    /// Fingerprint of the lowered steps ([`crate::engine::plan::Plan::fingerprint`]).
    pub plan: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct PlanFile {
    key: PlanKey,
    #[serde(flatten)]
    choices: Choices,
}

/// Where a plan came from (reported in logs and by `adasd bench`).
#[derive(Debug, Clone, PartialEq)]
pub enum PlanSource {
    Cached(PathBuf),
    /// Measured now; `reason` says why the cache was not used.
    Built {
        reason: String,
    },
}

pub fn file_name(model: &str, precision: &str, batch: usize) -> String {
    let safe: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{precision}-b{batch}.plan.json")
}

/// The cached choices if `path` holds a plan for exactly `key`, else why not.
pub fn lookup(path: &Path, key: &PlanKey) -> Result<Choices, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("no cached plan".into()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let file: PlanFile = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a plan file ({e})", path.display()))?;
    if file.key == *key {
        Ok(file.choices)
    } else {
        Err(format!(
            "cached plan {} is stale: {}",
            path.display(),
            difference(&file.key, key)
        ))
    }
}

pub fn store(path: &Path, key: &PlanKey, choices: &Choices) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&PlanFile {
        key: key.clone(),
        choices: choices.clone(),
    })
    .map_err(|e| e.to_string())?;
    // Write then rename: a crash mid-write leaves the old plan or none, never half a plan.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Which fields of the key changed, e.g. `driver 13000 → 13010`.
pub fn difference(old: &PlanKey, new: &PlanKey) -> String {
    let mut d = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            d.push(format!("{name} {a} → {b}"));
        }
    };
    field("engine", old.engine.clone(), new.engine.clone());
    field("model", old.model_sha256.clone(), new.model_sha256.clone());
    let table = |t: &Option<String>| t.clone().unwrap_or_else(|| "none".into());
    field(
        "INT8 calibration",
        table(&old.calibration_sha256),
        table(&new.calibration_sha256),
    );
    field(
        "input shape",
        format!("{:?}", old.input_shape),
        format!("{:?}", new.input_shape),
    );
    field("precision", old.precision.clone(), new.precision.clone());
    field("GPU", old.device.gpu.clone(), new.device.gpu.clone());
    field(
        "compute capability",
        format!("{:?}", old.device.compute_capability),
        format!("{:?}", new.device.compute_capability),
    );
    field(
        "driver",
        old.device.driver.to_string(),
        new.device.driver.to_string(),
    );
    field(
        "cuDNN",
        old.device.cudnn.to_string(),
        new.device.cudnn.to_string(),
    );
    field(
        "NVRTC",
        format!("{:?}", old.device.nvrtc),
        format!("{:?}", new.device.nvrtc),
    );
    field("plan", old.plan.clone(), new.plan.clone());
    d.join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::network::{ConvChoice, FusionChoice};
    use super::*;

    fn key() -> PlanKey {
        PlanKey {
            engine: "0.1.0/abc".into(),
            model_sha256: "00ff".into(),
            calibration_sha256: None,
            input_shape: vec![1, 3, 416, 416],
            precision: "fp16".into(),
            device: DeviceIdentity {
                gpu: "NVIDIA H200".into(),
                compute_capability: (9, 0),
                driver: 13000,
                cudnn: 91400,
                nvrtc: (13, 0),
            },
            plan: "feed".into(),
        }
    }

    #[test]
    fn a_stored_plan_is_found_and_any_changed_field_rebuilds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name("nanodet-m/coco", "fp16", 1));
        assert_eq!(lookup(&path, &key()).unwrap_err(), "no cached plan");
        let choices = Choices {
            convs: vec![ConvChoice {
                algo: 1,
                workspace: 4096,
                time_ms: 0.01,
            }],
            expand_dw: vec![FusionChoice {
                fused: true,
                fused_ms: Some(0.004),
                apart_ms: 0.009,
            }],
            inverted: vec![FusionChoice {
                fused: false,
                fused_ms: None,
                apart_ms: 0.012,
            }],
        };
        store(&path, &key(), &choices).unwrap();
        assert_eq!(lookup(&path, &key()).unwrap(), choices);
        let mut newer = key();
        newer.device.driver = 13010;
        let why = lookup(&path, &newer).unwrap_err();
        assert!(
            why.contains("stale") && why.contains("driver 13000 → 13010"),
            "{why}"
        );
        let mut other = key();
        other.device.gpu = "Orin".into();
        other.device.cudnn = 90300;
        let why = lookup(&path, &other).unwrap_err();
        assert!(
            why.contains("GPU NVIDIA H200 → Orin") && why.contains("cuDNN 91400 → 90300"),
            "{why}"
        );
        let mut recalibrated = key();
        recalibrated.calibration_sha256 = Some("c0de".into());
        let why = lookup(&path, &recalibrated).unwrap_err();
        assert!(why.contains("INT8 calibration none → c0de"), "{why}");
        std::fs::write(&path, "{").unwrap();
        assert!(lookup(&path, &key())
            .unwrap_err()
            .contains("not a plan file"));
    }
}
