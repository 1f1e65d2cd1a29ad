//! The intrinsics file written by `adas-calibrate intrinsics`, and reading intrinsics from it, from
//! a calibration file's `[intrinsics]` table or from an OpenCV YAML file (`camera_matrix`,
//! `distortion_coefficients`, as written by OpenCV's `calibration` sample).
//!
//! Principal point convention: this crate's pixel coordinates are continuous with the centre of
//! the top-left pixel at `(0.5, 0.5)`; OpenCV puts it at `(0, 0)`. TOML files written by this crate
//! store `cx, cy` in the crate convention (OpenCV value + 0.5); OpenCV YAML files are converted on
//! reading.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::distortion::{DistortionError, LensModel};
use crate::file::FileIntrinsics;

/// One view used for the intrinsics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrinsicsView {
    /// Image file.
    pub file: String,
    /// RMS reprojection error of its corners (px).
    pub error_px: f64,
}

/// The intrinsics file (TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrinsicsFile {
    /// Image width (px).
    pub image_width: u32,
    /// Image height (px).
    pub image_height: u32,
    /// Board, e.g. "9x6" (inner corners).
    pub board: String,
    /// Square size (metres).
    pub square_m: f64,
    /// RMS reprojection error over all corners (px).
    pub avg_reprojection_error_px: f64,
    /// Images where the board was not found.
    #[serde(default)]
    pub rejected: Vec<String>,
    /// ISO date.
    pub created: String,
    /// Tool and version.
    pub tool: String,
    /// Camera matrix (crate pixel convention) and distortion.
    pub intrinsics: FileIntrinsics,
    /// Views used.
    #[serde(default)]
    pub views: Vec<IntrinsicsView>,
}

/// Errors reading intrinsics.
#[derive(Debug, Error)]
pub enum LensFileError {
    /// I/O.
    #[error("{file}: cannot read intrinsics: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Content.
    #[error("{file}: {reason}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Reads the numbers of `data: [ … ]` following `key:` in an OpenCV YAML file.
fn yaml_matrix(text: &str, key: &str) -> Option<Vec<f64>> {
    let start = text.find(&format!("{key}:"))?;
    let rest = &text[start..];
    let data = rest.find("data:")?;
    let rest = &rest[data..];
    let open = rest.find('[')?;
    let close = rest.find(']')?;
    rest.get(open + 1..close)?
        .split(',')
        .map(|s| s.trim().parse::<f64>().ok())
        .collect()
}

/// Reads intrinsics from `path`: `.yml`/`.yaml` as OpenCV YAML, anything else as TOML with an
/// `[intrinsics]` table (an intrinsics file or a calibration file).
pub fn load_intrinsics(
    path: impl AsRef<Path>,
) -> Result<(FileIntrinsics, LensModel), LensFileError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| LensFileError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| LensFileError::Invalid {
        file: path.to_path_buf(),
        reason,
    };
    let yaml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"));
    let k = if yaml {
        let m = yaml_matrix(&text, "camera_matrix")
            .filter(|m| m.len() == 9)
            .ok_or_else(|| invalid("no 3×3 `camera_matrix` with `data: [...]`".into()))?;
        let d = yaml_matrix(&text, "distortion_coefficients").unwrap_or_default();
        FileIntrinsics {
            fx: m[0],
            fy: m[4],
            cx: m[2] + 0.5,
            cy: m[5] + 0.5,
            distortion: d,
        }
    } else {
        let table: toml::Table = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let k = table
            .get("intrinsics")
            .ok_or_else(|| invalid("no [intrinsics] table".into()))?
            .clone();
        k.try_into::<FileIntrinsics>()
            .map_err(|e| invalid(format!("[intrinsics]: {e}")))?
    };
    let lens =
        LensModel::from_file_intrinsics(&k).map_err(|e: DistortionError| invalid(e.to_string()))?;
    Ok((k, lens))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_opencv_reference_yaml() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/media/calibration/left_intrinsics.yml");
        if !p.exists() {
            // Never a silent skip in CI, which always has the shared test data.
            assert!(
                std::env::var_os("CI").is_none(),
                "CI: {} missing",
                p.display()
            );
            eprintln!(
                "SKIPPED: needs the project's shared test data ({})",
                p.display()
            );
            return;
        }
        let (k, lens) = load_intrinsics(&p).unwrap();
        assert!((k.fx - 535.9157).abs() < 1e-3 && (k.cx - 342.7832).abs() < 1e-3);
        assert_eq!(k.distortion.len(), 5);
        assert!(!lens.is_pinhole());
    }

    #[test]
    fn reads_toml_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.toml");
        std::fs::write(
            &p,
            "x = 1\n[intrinsics]\nfx = 500\nfy = 500\ncx = 320\ncy = 240\ndistortion = [0.1, 0, 0, 0]\n",
        )
        .unwrap();
        let (k, _) = load_intrinsics(&p).unwrap();
        assert_eq!(k.fx, 500.0);
        std::fs::write(&p, "[intrinsics]\nfx = 500\n").unwrap();
        let e = load_intrinsics(&p).unwrap_err().to_string();
        assert!(e.contains("k.toml") && e.contains("intrinsics"), "{e}");
        std::fs::write(&p, "[intrinsics]\nfx = -5\nfy = 500\ncx = 1\ncy = 1\n").unwrap();
        assert!(load_intrinsics(&p).is_err());
        let y = dir.path().join("k.yml");
        std::fs::write(&y, "%YAML:1.0\nfoo: 1\n").unwrap();
        let e = load_intrinsics(&y).unwrap_err().to_string();
        assert!(e.contains("camera_matrix"), "{e}");
    }
}
