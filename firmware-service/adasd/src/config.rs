//! The daemon's one configuration file (TOML).
//!
//! Every error names the file, the key and, where it can, the line. Relative paths in the file
//! are resolved against the file's own folder, so a config works from any working directory.

use adas_core::aeb::decider::AebParams;
use adas_core::perception::TrackerParams;
use adas_detect::BackendKind;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}{line}: key `{key}`: {message}", line = line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        key: String,
        line: Option<usize>,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: SourceConfig,
    pub detector: DetectorConfig,
    pub calibration: CalibrationConfig,
    pub ego: EgoConfig,
    /// The AEB decider: corridor, thresholds, timing (`docs/AEB.md`).
    #[serde(default)]
    pub aeb: AebParams,
    /// The BEV tracker.
    #[serde(default)]
    pub tracker: TrackerParams,
    #[serde(default)]
    pub can: CanConfig,
    #[serde(default)]
    pub output: OutputConfig,
    /// MCAP recording: off, continuous or event (black box); `docs/RECORDING.md`.
    #[serde(default)]
    pub record: adas_record::RecordConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `dir://PATH`, `file://IMAGE`, `file://VIDEO.mp4` (`.m4v`, `.mov`, `.h264`, `.264`),
    /// `v4l2:///dev/videoN`, `mcap://FILE`.
    pub uri: String,
    /// Frame rate of an image sequence, frames per second (default 10); for an MP4 video, a
    /// fixed rate that replaces the file's own frame times (default: the file's); for a camera,
    /// the rate requested from the driver (default: the driver's).
    pub fps: Option<f64>,
    /// Alternatively a file with one capture time in seconds per frame (sorted frame order).
    pub timestamps: Option<PathBuf>,
    /// Camera only: pixel format (`yuyv`, `uyvy`, `rgb24`, `mjpeg`; default: the first of
    /// these the device offers at the requested size). See docs/CAMERA.md.
    pub format: Option<adas_io::source::PixelFormat>,
    /// Camera only: image size to request (default: the calibration's image size).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Camera only: no frame for this long → lost frame reported, capture restarted, ms.
    #[serde(default = "default_camera_timeout_ms")]
    pub timeout_ms: u64,
    /// Camera only: retry a vanished device this often, ms.
    #[serde(default = "default_camera_reconnect_ms")]
    pub reconnect_ms: u64,
}

fn default_camera_timeout_ms() -> u64 {
    adas_io::source::CameraOptions::default().timeout_ms
}

fn default_camera_reconnect_ms() -> u64 {
    adas_io::source::CameraOptions::default().reconnect_ms
}

impl SourceConfig {
    /// The camera settings; the size defaults to `calibrated` (the calibration's image size).
    pub fn camera_options(&self, calibrated: Option<(u32, u32)>) -> adas_io::source::CameraOptions {
        adas_io::source::CameraOptions {
            format: self.format,
            size: self.width.zip(self.height).or(calibrated),
            fps: self.fps,
            timeout_ms: self.timeout_ms,
            reconnect_ms: self.reconnect_ms,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// Model manifest (TOML next to the ONNX file).
    pub model: PathBuf,
    #[serde(default)]
    pub backend: BackendKind,
    /// Overrides the manifest's default score threshold.
    pub score_threshold: Option<f32>,
    /// ONNX Runtime shared library for `backend = "ort"` (default: ORT_DYLIB_PATH, then the
    /// standard places; see docs/ORT.md).
    pub ort_library: Option<PathBuf>,
    /// `[detector.ort]`: execution providers and their options (docs/ORT.md).
    #[serde(default)]
    pub ort: adas_detect::OrtConfig,
    /// `[detector.cuda]`: the GPU engine (docs/GPU.md).
    #[serde(default)]
    pub cuda: CudaConfig,
}

/// `[detector.cuda]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CudaConfig {
    /// `fp16` (default, tensor cores) or `fp32`.
    pub precision: adas_detect::Precision,
    /// GPU ordinal.
    pub device: usize,
    /// Plan and kernel cache (default: systemd's $CACHE_DIRECTORY, else $XDG_CACHE_HOME/adas,
    /// else ~/.cache/adas).
    pub cache_dir: Option<PathBuf>,
    /// Streams the network's independent branches may run on side by side (default 4; 1 runs
    /// every step in order on one stream).
    pub streams: usize,
}

impl Default for CudaConfig {
    fn default() -> CudaConfig {
        CudaConfig {
            precision: adas_detect::Precision::default(),
            device: 0,
            cache_dir: None,
            streams: adas_detect::DEFAULT_CUDA_STREAMS,
        }
    }
}

impl CudaConfig {
    /// The cache directory to use.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        self.cache_dir
            .clone()
            .or_else(|| env("CACHE_DIRECTORY"))
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("adas")))
            .or_else(|| env("HOME").map(|d| d.join(".cache/adas")))
    }
}

impl DetectorConfig {
    /// The backend settings for [`adas_detect::Detector::load_with`].
    pub fn backend_options(&self) -> adas_detect::BackendOptions {
        backend_options(self.ort_library.clone(), self.ort.clone(), &self.cuda)
    }
}

/// Backend settings for [`adas_detect::Detector::load_with`]: ONNX Runtime's library and
/// options, and the cuda engine's (batch 1) where the build has it.
#[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
pub fn backend_options(
    ort_library: Option<PathBuf>,
    ort: adas_detect::OrtConfig,
    cuda: &CudaConfig,
) -> adas_detect::BackendOptions {
    adas_detect::BackendOptions {
        ort_library,
        ort,
        #[cfg(feature = "cuda")]
        cuda: adas_detect::cuda::CudaOptions {
            precision: cuda.precision,
            batch: 1,
            device: cuda.device,
            cache_dir: cuda.cache_dir(),
            streams: cuda.streams,
        },
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationConfig {
    pub file: PathBuf,
    /// Warn at start-up when the calibration's reprojection RMS is above this, pixels.
    #[serde(default = "default_max_rms_px")]
    pub max_reprojection_rms_px: f64,
}

fn default_max_rms_px() -> f64 {
    3.0
}

/// Ego vehicle state. Until the CAN input exists the speed is a fixed value from here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgoConfig {
    /// Vehicle speed, km/h.
    pub speed_kph: f64,
}

/// Where CAN goes to and comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CanMode {
    /// Output only to `can.log` in the output folder; ego input replayed from `input_log` (or
    /// the fixed `[ego] speed_kph` without one).
    #[default]
    CandumpFile,
    /// Live SocketCAN on `interface`: status/warnings sent, ego input received and supervised
    /// (`can.log` is still written).
    Socketcan,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanConfig {
    /// `candump-file` (default) or `socketcan`.
    pub mode: CanMode,
    /// SocketCAN interface (`can0`, `vcan0`); also the name written into the candump log.
    pub interface: String,
    /// candump log (`candump -L` format) replayed as CAN input in `candump-file` mode.
    pub input_log: Option<PathBuf>,
    /// Heartbeat/status period, ms.
    pub status_period_ms: u64,
    /// Repetition period of AEB_Warning while a stage is active, ms.
    pub warning_period_ms: u64,
    /// Reopen a vanished interface this often, ms.
    pub reconnect_ms: u64,
    /// Expected cycle of VehicleSpeed / DriverInput / YawRate, ms (from the DBC by default).
    pub speed_period_ms: u64,
    /// No valid ego speed for this long → decider inhibited (ego stale). See docs/CAN.md.
    pub speed_timeout_ms: u64,
    pub driver_timeout_ms: u64,
    pub yaw_rate_timeout_ms: u64,
    /// Largest accepted alive-counter jump (E2E Profile 1 MaxDeltaCounter).
    pub max_delta_counter: u8,
    /// Consecutive bad frames (CRC, counter, DLC, range) before an input is invalid.
    pub max_errors: u32,
    /// Consecutive good frames that make an invalid input valid again.
    pub recovery_frames: u32,
}

impl Default for CanConfig {
    fn default() -> Self {
        Self {
            mode: CanMode::CandumpFile,
            interface: "can0".into(),
            input_log: None,
            status_period_ms: 100,
            warning_period_ms: 100,
            reconnect_ms: 200,
            speed_period_ms: 20,
            speed_timeout_ms: 100,
            driver_timeout_ms: 100,
            yaw_rate_timeout_ms: 100,
            max_delta_counter: 2,
            max_errors: 3,
            recovery_frames: 2,
        }
    }
}

impl CanConfig {
    /// The input supervision parameters.
    pub fn supervision(&self) -> adas_core::can::supervision::EgoInputParams {
        use adas_core::can::supervision::SupervisionParams;
        let p = |timeout_ms| SupervisionParams {
            period_ms: self.speed_period_ms,
            timeout_ms,
            max_delta_counter: self.max_delta_counter,
            max_errors: self.max_errors,
            recovery_frames: self.recovery_frames,
        };
        adas_core::can::supervision::EgoInputParams {
            speed: p(self.speed_timeout_ms),
            driver: p(self.driver_timeout_ms),
            yaw_rate: p(self.yaw_rate_timeout_ms),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Output folder; the command line's `--out` overrides it.
    pub dir: Option<PathBuf>,
    /// Write an annotated JPEG per frame.
    pub annotated_frames: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: None,
            annotated_frames: true,
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses, validates and resolves relative paths against `path`'s folder.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate(text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.detector.model);
        if let Some(p) = self.detector.ort_library.as_mut() {
            resolve(p);
        }
        if let Some(p) = self.detector.ort.tensorrt.int8_calibration_table.as_mut() {
            resolve(p);
        }
        if let Some(p) = self.detector.cuda.cache_dir.as_mut() {
            resolve(p);
        }
        if let Some(p) = self.detector.ort.tensorrt.engine_cache_dir.as_mut() {
            resolve(p);
        }
        resolve(&mut self.calibration.file);
        if let Some(t) = self.source.timestamps.as_mut() {
            resolve(t);
        }
        if let Some(l) = self.can.input_log.as_mut() {
            resolve(l);
        }
        if let Some(d) = self.output.dir.as_mut() {
            resolve(d);
        }
        if let Some(d) = self.record.dir.as_mut() {
            resolve(d);
        }
        if let Some(rest) = self.source.uri.strip_prefix("dir://") {
            self.source.uri = format!("dir://{}", join_uri_path(base, rest));
        } else if let Some(rest) = self.source.uri.strip_prefix("file://") {
            self.source.uri = format!("file://{}", join_uri_path(base, rest));
        } else if let Some(rest) = self.source.uri.strip_prefix("mcap://") {
            self.source.uri = format!("mcap://{}", join_uri_path(base, rest));
        } else if let Some(rest) = self.source.uri.strip_prefix("video://") {
            self.source.uri = format!("video://{}", join_uri_path(base, rest));
        }
    }

    fn validate(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let checks = [
            check_source(&self.source),
            check_detector(&self.detector),
            check_calibration(&self.calibration),
            check_ego(&self.ego),
            self.aeb
                .validate()
                .map_err(|(k, m)| Refused::new("aeb", &k, m)),
            self.tracker
                .validate()
                .map_err(|(k, m)| Refused::new("tracker", &k, m)),
            check_can(&self.can),
        ];
        match checks.into_iter().find_map(Result::err) {
            Some(refused) => Err(refused.into_error(text, path)),
            None => Ok(()),
        }
    }
}

/// A value the checks refuse: its table, its key there (nested keys such as
/// `target_half_width_m.car` live in sub-tables) and why.
struct Refused {
    table: String,
    key: String,
    message: String,
}

impl Refused {
    fn new(table: &str, key: &str, message: impl Into<String>) -> Refused {
        Refused {
            table: table.into(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// The error naming the file, the full key and the line it is on.
    fn into_error(self, text: &str, path: &Path) -> ConfigError {
        let (table, leaf) = match self.key.rsplit_once('.') {
            Some((sub, leaf)) => (format!("{}.{sub}", self.table), leaf.to_string()),
            None => (self.table.clone(), self.key.clone()),
        };
        ConfigError::Invalid {
            path: path.to_path_buf(),
            key: format!("{}.{}", self.table, self.key),
            line: line_of(text, &table, &leaf),
            message: self.message,
        }
    }
}

fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

fn check_source(s: &SourceConfig) -> Result<(), Refused> {
    let refuse = |key: &str, message: String| Err(Refused::new("source", key, message));
    if let Some(fps) = s.fps {
        if !positive(fps) {
            return refuse("fps", format!("{fps} must be a positive number"));
        }
    }
    if !s.uri.starts_with("v4l2://") {
        let camera_keys = [
            ("format", s.format.is_some()),
            ("width", s.width.is_some()),
            ("height", s.height.is_some()),
        ];
        if let Some((key, _)) = camera_keys.iter().find(|(_, set)| *set) {
            return refuse(key, "applies to v4l2:// cameras only; remove it".into());
        }
    }
    match (s.width, s.height) {
        (Some(0), _) | (_, Some(0)) => {
            return refuse("width", "width and height must be > 0".into())
        }
        (Some(_), None) | (None, Some(_)) => {
            return refuse("width", "give both width and height, or neither".into())
        }
        _ => {}
    }
    for (key, v) in [
        ("timeout_ms", s.timeout_ms),
        ("reconnect_ms", s.reconnect_ms),
    ] {
        if v == 0 {
            return refuse(key, "must be at least 1 ms".into());
        }
    }
    if s.fps.is_some() && s.timestamps.is_some() {
        return refuse(
            "timestamps",
            "give either `fps` or `timestamps`, not both".into(),
        );
    }
    Ok(())
}

fn check_detector(d: &DetectorConfig) -> Result<(), Refused> {
    if let Some(t) = d.score_threshold {
        if !(0.0..=1.0).contains(&t) {
            let message = format!("{t} is outside [0, 1]");
            return Err(Refused::new("detector", "score_threshold", message));
        }
    }
    if !(1..=32).contains(&d.cuda.streams) {
        let message = format!(
            "{} must be within 1–32 (1 runs every step in order)",
            d.cuda.streams
        );
        return Err(Refused::new("detector.cuda", "streams", message));
    }
    Ok(())
}

fn check_calibration(c: &CalibrationConfig) -> Result<(), Refused> {
    if positive(c.max_reprojection_rms_px) {
        Ok(())
    } else {
        let message = "must be a positive number of pixels";
        Err(Refused::new(
            "calibration",
            "max_reprojection_rms_px",
            message,
        ))
    }
}

fn check_ego(e: &EgoConfig) -> Result<(), Refused> {
    let speed = e.speed_kph;
    if speed.is_finite() && (0.0..=300.0).contains(&speed) {
        Ok(())
    } else {
        let message = format!("{speed} must be within 0–300 km/h");
        Err(Refused::new("ego", "speed_kph", message))
    }
}

fn check_can(c: &CanConfig) -> Result<(), Refused> {
    let refuse = |key: &str, message: &str| Err(Refused::new("can", key, message));
    if c.interface.is_empty() || c.interface.contains(char::is_whitespace) {
        return refuse("interface", "must be a non-empty name without spaces");
    }
    for (key, v) in [
        ("status_period_ms", c.status_period_ms),
        ("warning_period_ms", c.warning_period_ms),
        ("reconnect_ms", c.reconnect_ms),
        ("speed_period_ms", c.speed_period_ms),
        ("speed_timeout_ms", c.speed_timeout_ms),
        ("driver_timeout_ms", c.driver_timeout_ms),
        ("yaw_rate_timeout_ms", c.yaw_rate_timeout_ms),
    ] {
        if v == 0 {
            return refuse(key, "must be at least 1 ms");
        }
    }
    if !(1..=14).contains(&c.max_delta_counter) {
        return refuse("max_delta_counter", "must be within 1–14");
    }
    if c.max_errors == 0 || c.recovery_frames == 0 {
        return refuse(
            "max_errors",
            "max_errors and recovery_frames must be at least 1",
        );
    }
    Ok(())
}

fn join_uri_path(base: &Path, rest: &str) -> String {
    let p = Path::new(rest);
    if p.is_relative() {
        base.join(p).display().to_string()
    } else {
        rest.to_string()
    }
}

/// Line number (1-based) of `key = …` inside `[table]`, for error messages.
fn line_of(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = name.trim().to_string();
        } else if current == table {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim() == key {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[source]
uri = "dir://frames"
fps = 10

[detector]
model = "../models/m.toml"

[calibration]
file = "calib.toml"

[ego]
speed_kph = 30
"#;

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let c = Config::parse(MINIMAL, Path::new("/etc/adas/adasd.toml")).unwrap();
        assert_eq!(c.source.uri, "dir:///etc/adas/frames");
        assert_eq!(c.detector.model, Path::new("/etc/adas/../models/m.toml"));
        assert_eq!(c.detector.backend, BackendKind::Tract);
        assert_eq!(c.aeb.vehicle_width_m, 1.8);
        assert_eq!(c.tracker.confirm_hits, 3);
        assert_eq!(c.can.interface, "can0");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = MINIMAL.replace("speed_kph = 30", "speed_kph = 30\nsped = 3");
        let err = Config::parse(&text, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.toml") && err.contains("sped") && err.contains("line 14"),
            "{err}"
        );
    }

    #[test]
    fn impossible_values_name_file_key_and_line() {
        let text = MINIMAL.replace("speed_kph = 30", "speed_kph = -5");
        let err = Config::parse(&text, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ego.speed_kph") && err.contains("line 13"),
            "{err}"
        );
        let text = MINIMAL.replace("fps = 10", "fps = nan");
        let err = Config::parse(&text, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("source.fps"), "{err}");
    }

    #[test]
    fn cuda_streams_default_to_four_and_are_checked() {
        let c = Config::parse(MINIMAL, Path::new("a.toml")).unwrap();
        assert_eq!(c.detector.cuda.streams, adas_detect::DEFAULT_CUDA_STREAMS);
        let with = |v: &str| {
            MINIMAL.replace(
                "[calibration]",
                &format!("[detector.cuda]\nstreams = {v}\n\n[calibration]"),
            )
        };
        let c = Config::parse(&with("1"), Path::new("a.toml")).unwrap();
        assert_eq!(c.detector.cuda.streams, 1);
        assert_eq!(c.detector.cuda.precision, adas_detect::Precision::Fp16);
        let err = Config::parse(&with("0"), Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("detector.cuda.streams") && err.contains("line 10"),
            "{err}"
        );
    }

    #[test]
    fn camera_keys_are_checked_and_default_to_the_calibrated_size() {
        let cam = MINIMAL.replace(
            "uri = \"dir://frames\"",
            "uri = \"v4l2:///dev/video0\"\nformat = \"mjpeg\"",
        );
        let c = Config::parse(&cam, Path::new("/etc/a.toml")).unwrap();
        assert_eq!(c.source.uri, "v4l2:///dev/video0");
        let o = c.source.camera_options(Some((640, 480)));
        assert_eq!(o.format, Some(adas_io::source::PixelFormat::Mjpeg));
        assert_eq!(
            (o.size, o.fps, o.timeout_ms, o.reconnect_ms),
            (Some((640, 480)), Some(10.0), 1000, 500)
        );
        let sized = cam.replace("format = \"mjpeg\"", "width = 320\nheight = 240");
        let c = Config::parse(&sized, Path::new("a.toml")).unwrap();
        assert_eq!(
            c.source.camera_options(Some((640, 480))).size,
            Some((320, 240))
        );
        let half = cam.replace("format = \"mjpeg\"", "width = 320");
        let err = Config::parse(&half, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("source.width") && err.contains("both"),
            "{err}"
        );
        let err = Config::parse(&cam.replace("mjpeg", "h264"), Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("h264") && err.contains("mjpeg"), "{err}");
        let on_dir = MINIMAL.replace("fps = 10", "fps = 10\nformat = \"yuyv\"");
        let err = Config::parse(&on_dir, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("source.format") && err.contains("v4l2://"),
            "{err}"
        );
        let zero = cam.replace("format = \"mjpeg\"", "reconnect_ms = 0");
        let err = Config::parse(&zero, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("source.reconnect_ms"), "{err}");
    }

    #[test]
    fn malformed_toml_is_a_parse_error_with_a_line() {
        let err = Config::parse("[source\nuri=", Path::new("b.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.toml") && err.contains("line"), "{err}");
    }

    #[test]
    fn aeb_and_tracker_values_are_validated_with_file_key_and_line() {
        // A zero-width corridor.
        let text = format!("{MINIMAL}\n[aeb]\nvehicle_width_m = 0\n");
        let err = Config::parse(&text, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        let line = text
            .lines()
            .position(|l| l.starts_with("vehicle_width_m"))
            .unwrap()
            + 1;
        assert!(
            err.contains("aeb.vehicle_width_m") && err.contains(&format!("line {line}")),
            "{err}"
        );
        let text = format!("{MINIMAL}\n[aeb]\nfull_ttc_s = nan\n");
        let err = Config::parse(&text, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("aeb.full_ttc_s"), "{err}");
        let text = format!("{MINIMAL}\n[tracker.process_noise.car]\nlateral_accel_mps2 = -1\nlongitudinal_accel_mps2 = 1\njerk_mps3 = 1\ninit_speed_std_mps = 1\n");
        let err = Config::parse(&text, Path::new("a.toml"))
            .unwrap_err()
            .to_string();
        let line = text
            .lines()
            .position(|l| l.starts_with("lateral_accel_mps2"))
            .unwrap()
            + 1;
        assert!(
            err.contains("tracker.process_noise.car.lateral_accel_mps2")
                && err.contains(&format!("line {line}")),
            "{err}"
        );
    }
}
