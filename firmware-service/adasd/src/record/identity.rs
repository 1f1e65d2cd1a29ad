//! A recording's identity: which config, calibration and model made it (paths, hashes and
//! contents in the MCAP metadata), and how a replay compares its own with the recording's.

use crate::config::Config;
use std::collections::BTreeMap;
use std::path::Path;

/// sha256 of a file, hex (`"unreadable: …"` when it cannot be read). Streams the file (a
/// recording of a long drive is not loaded into memory to be hashed).
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let hash = || -> std::io::Result<String> {
        let mut hasher = Sha256::new();
        std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
        Ok(hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    };
    hash().unwrap_or_else(|e| format!("unreadable: {e}"))
}

/// Metadata keys naming the model that made the detections.
pub const MODEL_KEYS: [&str; 5] = [
    "model_manifest",
    "model_manifest_sha256",
    "model_name",
    "model_sha256",
    "detector_backend",
];

/// The recording's identity: config, calibration and model (paths, hashes, contents).
pub fn metadata(config: &Config, config_path: Option<&Path>) -> BTreeMap<String, String> {
    let mut m = metadata_without_model(config, config_path);
    m.insert(
        "model_manifest".into(),
        config.detector.model.display().to_string(),
    );
    m.insert(
        "model_manifest_sha256".into(),
        sha256_file(&config.detector.model),
    );
    if let Ok(manifest) = adas_plugins::manifest::Manifest::load(&config.detector.model) {
        m.insert("model_name".into(), manifest.name.clone());
        m.insert("model_sha256".into(), sha256_file(&manifest.onnx));
    }
    m.insert(
        "detector_backend".into(),
        format!("{:?}", config.detector.backend).to_lowercase(),
    );
    m
}

/// The identity of an object-list replay: config and calibration as now, the model that made
/// the detections as `recorded` names it (the configured model is not used, nor hashed).
pub fn metadata_object_list(
    config: &Config,
    config_path: Option<&Path>,
    recorded: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut m = metadata_without_model(config, config_path);
    for k in MODEL_KEYS {
        if let Some(v) = recorded.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m
}

/// Config and calibration (paths, hashes, contents) and the format/adasd versions.
fn metadata_without_model(config: &Config, config_path: Option<&Path>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert(
        "format_version".into(),
        adas_record::schema::FORMAT_VERSION.into(),
    );
    m.insert("adasd_version".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(p) = config_path {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        m.insert("config_path".into(), abs.display().to_string());
        m.insert("config_sha256".into(), sha256_file(p));
        if let Ok(text) = std::fs::read_to_string(p) {
            m.insert("config_toml".into(), text);
        }
    }
    let cal = &config.calibration.file;
    m.insert("calibration_file".into(), cal.display().to_string());
    m.insert("calibration_sha256".into(), sha256_file(cal));
    if let Ok(text) = std::fs::read_to_string(cal) {
        m.insert("calibration_toml".into(), text);
    }
    m
}

/// Does the recording's calibration and model match `mine`? Lists each key that differs with
/// both values.
pub fn identity_differences(
    recorded: &BTreeMap<String, String>,
    mine: &BTreeMap<String, String>,
) -> Vec<String> {
    ["calibration_sha256", "model_sha256", "detector_backend"]
        .iter()
        .filter_map(|k| {
            let (a, b) = (recorded.get(*k), mine.get(*k));
            (a.is_some() && a != b).then(|| {
                format!(
                    "{k}: recording {} vs now {}",
                    a.map_or("-", |s| s.as_str()),
                    b.map_or("-", |s| s.as_str())
                )
            })
        })
        .collect()
}
