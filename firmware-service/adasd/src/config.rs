//! The daemon's one configuration file (TOML).
//!
//! Every error names the file, the key and, where it can, the line. Relative paths in the file
//! are resolved against the file's own folder, so a config works from any working directory.

use adas_core::aeb::decider::AebParams;
use adas_core::perception::TrackerParams;
use adas_detect::BackendKind;
use adas_plugins::manifest::Manifest;
use adas_plugins::range::{self, Bound, Numbers, Range, Refused, Row};
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
    /// The Prometheus endpoint (`/metrics`, `/healthz`); off unless `listen` is given
    /// (docs/METRICS.md).
    #[serde(default)]
    pub metrics: MetricsConfig,
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

/// A camera image side, px: 8K UHD is 7680 × 4320; below 16 px nothing can be detected.
const CAMERA_SIDE: Range = Range::new(16.0, 8192.0, "px");
const CAMERA_SIDE_WHY: &str = "8K UHD is 7680 × 4320; below 16 px nothing is detected";

impl SourceConfig {
    pub const RANGES: &'static [Bound<SourceConfig>] = &[
        Bound::new(
            "fps",
            Range::new(0.1, 1000.0, "frames/s"),
            |s| s.fps.numbers(),
            "frame times come from it: an absurd rate puts every frame at the same time and \
             the tracker sees infinite speeds",
        ),
        Bound::new("width", CAMERA_SIDE, |s| s.width.numbers(), CAMERA_SIDE_WHY),
        Bound::new(
            "height",
            CAMERA_SIDE,
            |s| s.height.numbers(),
            CAMERA_SIDE_WHY,
        ),
        Bound::new(
            "timeout_ms",
            Range::new(10.0, 10_000.0, "ms"),
            |s| s.timeout_ms.numbers(),
            "a frame is due every 16–100 ms; after 10 s a stalled camera must be restarted",
        ),
        Bound::new(
            "reconnect_ms",
            Range::new(10.0, 60_000.0, "ms"),
            |s| s.reconnect_ms.numbers(),
            "a replugged camera is back within a minute of retries",
        ),
    ];

    /// Opens the source as a run does; a camera is asked for `calibrated` (the calibration's
    /// image size) unless `width` and `height` say otherwise.
    pub fn open(
        &self,
        calibrated: (u32, u32),
    ) -> Result<Box<dyn adas_io::source::FrameSource>, adas_io::source::SourceError> {
        use adas_io::source::Timing;
        let timing = match (&self.timestamps, self.fps) {
            (Some(file), _) => Timing::File(file.clone()),
            (None, Some(fps)) => Timing::FixedRate(fps),
            (None, None) => Timing::FromSource { fallback_fps: 10.0 },
        };
        adas_io::source::open_with(&self.uri, timing, &self.camera_options(Some(calibrated)))
    }

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
    /// `fp16` (default, tensor cores), `fp32`, or `int8` (INT8 tensor cores with a quantized
    /// model's own quantization — a QDQ model — or a float model's calibration table).
    pub precision: adas_detect::Precision,
    /// The INT8 calibration table of a float model (`adasd calibrate-int8`); default: the
    /// model manifest's `int8_calibration`.
    pub int8_calibration: Option<PathBuf>,
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
            int8_calibration: None,
            device: 0,
            cache_dir: None,
            streams: adas_detect::DEFAULT_CUDA_STREAMS,
        }
    }
}

impl CudaConfig {
    pub const RANGES: &'static [Bound<CudaConfig>] = &[
        Bound::new(
            "device",
            Range::new(0.0, 15.0, ""),
            |c| c.device.numbers(),
            "a GPU ordinal; hosts carry at most 16 GPUs, Jetsons one",
        ),
        Bound::new(
            "streams",
            Range::new(1.0, 32.0, "streams"),
            |c| c.streams.numbers(),
            "1 runs every step in order; no network has more than 32 independent branches",
        ),
    ];

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
    pub const RANGES: &'static [Bound<DetectorConfig>] = &[Bound::new(
        "score_threshold",
        Range::new(0.0, 1.0, ""),
        |d| d.score_threshold.numbers(),
        "a probability",
    )];

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
            int8_calibration: cuda.int8_calibration.clone(),
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

impl CalibrationConfig {
    pub const RANGES: &'static [Bound<CalibrationConfig>] = &[Bound::new(
        "max_reprojection_rms_px",
        Range::new(0.1, 50.0, "px"),
        |c| c.max_reprojection_rms_px.numbers(),
        "a warning bound: solvers reach 0.2–2 px; at 50 px distances are off by metres",
    )];
}

/// Ego vehicle state. Until the CAN input exists the speed is a fixed value from here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgoConfig {
    /// Vehicle speed, km/h.
    pub speed_kph: f64,
}

impl EgoConfig {
    pub const RANGES: &'static [Bound<EgoConfig>] = &[Bound::new(
        "speed_kph",
        Range::new(0.0, 300.0, "km/h"),
        |e| e.speed_kph.numbers(),
        "a road vehicle's speed",
    )];
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
    /// No frame decided for this long: the CAN thread reports AEB unavailable by itself (the
    /// pipeline stalled) and stops repeating an active warning, ms.
    pub stale_after_ms: u64,
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
            stale_after_ms: 1000,
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

/// Period of the messages the daemon sends, ms.
const CAN_PERIOD: Range = Range::new(10.0, 1000.0, "ms");
const INPUT_TIMEOUT: Range = Range::new(10.0, 2000.0, "ms");
const INPUT_TIMEOUT_WHY: &str = "inputs cycle every 10–100 ms; at 100 km/h 2 s is 56 m driven on \
     an old value; also ≥ speed_period_ms";
const FRAME_COUNT: Range = Range::new(1.0, 100.0, "frames");

impl CanConfig {
    pub const RANGES: &'static [Bound<CanConfig>] = &[
        Bound::new(
            "status_period_ms",
            CAN_PERIOD,
            |c| c.status_period_ms.numbers(),
            "the vehicle supervises AEB_Status; a longer period reads as a dead ADAS",
        ),
        Bound::new(
            "warning_period_ms",
            CAN_PERIOD,
            |c| c.warning_period_ms.numbers(),
            "as status_period_ms",
        ),
        Bound::new(
            "reconnect_ms",
            Range::new(10.0, 60_000.0, "ms"),
            |c| c.reconnect_ms.numbers(),
            "a vanished interface is retried within a minute",
        ),
        Bound::new(
            "stale_after_ms",
            Range::new(100.0, 60_000.0, "ms"),
            |c| c.stale_after_ms.numbers(),
            "a few frame periods of the slowest detector; beyond a minute a stall goes unreported",
        ),
        Bound::new(
            "speed_period_ms",
            Range::new(1.0, 1000.0, "ms"),
            |c| c.speed_period_ms.numbers(),
            "vehicle signals cycle every 10–100 ms",
        ),
        Bound::new(
            "speed_timeout_ms",
            INPUT_TIMEOUT,
            |c| c.speed_timeout_ms.numbers(),
            INPUT_TIMEOUT_WHY,
        ),
        Bound::new(
            "driver_timeout_ms",
            INPUT_TIMEOUT,
            |c| c.driver_timeout_ms.numbers(),
            INPUT_TIMEOUT_WHY,
        ),
        Bound::new(
            "yaw_rate_timeout_ms",
            INPUT_TIMEOUT,
            |c| c.yaw_rate_timeout_ms.numbers(),
            INPUT_TIMEOUT_WHY,
        ),
        Bound::new(
            "max_delta_counter",
            Range::new(1.0, 14.0, ""),
            |c| c.max_delta_counter.numbers(),
            "the alive counter has 15 values (E2E profile 1)",
        ),
        Bound::new(
            "max_errors",
            FRAME_COUNT,
            |c| c.max_errors.numbers(),
            "at a 20 ms cycle 100 frames is 2 s of bad input accepted",
        ),
        Bound::new(
            "recovery_frames",
            FRAME_COUNT,
            |c| c.recovery_frames.numbers(),
            "as max_errors",
        ),
    ];

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
    /// Write `frames.jsonl` (a line per processed frame) and `can.log` (every CAN frame sent)
    /// into the output folder. Both start afresh with every run and grow with it: off for a
    /// service, whose record is the `[record]` black box (bounded by its disk budget).
    pub logs: bool,
    /// Write an annotated JPEG per frame.
    pub annotated_frames: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: None,
            logs: true,
            annotated_frames: true,
        }
    }
}

/// `[metrics]`: the HTTP endpoint for Prometheus and health checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `IP:PORT` to serve on (`127.0.0.1:9108`, `[::1]:9108`; port 0: any free port, logged).
    /// Absent: no endpoint.
    pub listen: Option<String>,
    /// A connection that has not sent its request, or not taken the response, within this is
    /// closed, ms.
    pub timeout_ms: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            timeout_ms: 2000,
        }
    }
}

impl MetricsConfig {
    pub const RANGES: &'static [Bound<MetricsConfig>] = &[Bound::new(
        "timeout_ms",
        Range::new(10.0, 30_000.0, "ms"),
        |m| m.timeout_ms.numbers(),
        "a scraper sends its request at once; one connection is served at a time, so a client \
         that stalls holds the next scrape (Prometheus gives up after 10 s) for this long",
    )];

    /// The address to serve on (`None`: no endpoint). Only IP addresses: a host name would
    /// depend on name resolution at start-up.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, Refused> {
        self.listen
            .as_deref()
            .map(|text| {
                text.parse().map_err(|_| {
                    Refused::new(
                        "listen",
                        format!(
                            "`{text}` is not an IP address and port; write e.g. \"127.0.0.1:9108\" \
                             or \"[::1]:9108\" (port 0: any free port), or remove the key to turn \
                             the endpoint off"
                        ),
                    )
                })
            })
            .transpose()
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
        if let Some(p) = self.detector.cuda.int8_calibration.as_mut() {
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
        self.check().map_err(|refused| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: refused.line(text),
            key: refused.key,
            message: refused.message,
        })
    }

    /// The first value the file may not have: each table's ranges, then the rules between
    /// keys. Keys are named from the file's top (`can.status_period_ms`).
    fn check(&self) -> Result<(), Refused> {
        range::check(&self.source, SourceConfig::RANGES).map_err(|r| r.within("source"))?;
        check_source(&self.source).map_err(|r| r.within("source"))?;
        range::check(&self.detector, DetectorConfig::RANGES).map_err(|r| r.within("detector"))?;
        range::check(&self.detector.cuda, CudaConfig::RANGES)
            .map_err(|r| r.within("detector.cuda"))?;
        self.detector
            .ort
            .validate()
            .map_err(|r| r.within("detector.ort"))?;
        range::check(&self.calibration, CalibrationConfig::RANGES)
            .map_err(|r| r.within("calibration"))?;
        range::check(&self.ego, EgoConfig::RANGES).map_err(|r| r.within("ego"))?;
        self.aeb.validate().map_err(|r| r.within("aeb"))?;
        self.tracker.validate().map_err(|r| r.within("tracker"))?;
        range::check(&self.can, CanConfig::RANGES).map_err(|r| r.within("can"))?;
        check_can(&self.can).map_err(|r| r.within("can"))?;
        self.record.validate().map_err(|r| r.within("record"))?;
        range::check(&self.metrics, MetricsConfig::RANGES).map_err(|r| r.within("metrics"))?;
        self.metrics
            .listen_addr()
            .map(|_| ())
            .map_err(|r| r.within("metrics"))
    }
}

/// Every range of the config file and of a model manifest, in file order: the table of
/// docs/RELIABILITY.md ("Configuration ranges"), which a test keeps equal to this.
pub fn range_rows() -> Vec<Row> {
    use adas_core::aeb::decider::ClassHalfWidths;
    use adas_core::perception::track::ClassNoise;
    [
        range::rows("`[source]`", SourceConfig::RANGES),
        range::rows("`[detector]`", DetectorConfig::RANGES),
        range::rows("`[detector.cuda]`", CudaConfig::RANGES),
        adas_detect::OrtConfig::range_rows(),
        range::rows("`[calibration]`", CalibrationConfig::RANGES),
        range::rows("`[ego]`", EgoConfig::RANGES),
        range::rows("`[aeb]`", AebParams::RANGES),
        range::rows("`[aeb.target_half_width_m]`", ClassHalfWidths::RANGES),
        range::rows("`[tracker]`", TrackerParams::RANGES),
        range::rows("`[tracker.process_noise.<class>]`", ClassNoise::RANGES),
        range::rows("`[can]`", CanConfig::RANGES),
        range::rows("`[record]`", adas_record::RecordConfig::RANGES),
        range::rows("`[metrics]`", MetricsConfig::RANGES),
        Manifest::range_rows(),
    ]
    .concat()
}

/// The rules between `[source]` keys (ranges are [`SourceConfig::RANGES`]).
fn check_source(s: &SourceConfig) -> Result<(), Refused> {
    if !s.uri.starts_with("v4l2://") {
        let camera_keys = [
            ("format", s.format.is_some()),
            ("width", s.width.is_some()),
            ("height", s.height.is_some()),
        ];
        if let Some((key, _)) = camera_keys.iter().find(|(_, set)| *set) {
            return Err(Refused::new(
                *key,
                "applies to v4l2:// cameras only; remove it",
            ));
        }
    }
    if s.width.is_some() != s.height.is_some() {
        return Err(Refused::new(
            "width",
            "give both width and height, or neither",
        ));
    }
    if s.fps.is_some() && s.timestamps.is_some() {
        return Err(Refused::new(
            "timestamps",
            "give either `fps` or `timestamps`, not both",
        ));
    }
    Ok(())
}

/// The rules between `[can]` keys (ranges are [`CanConfig::RANGES`]).
fn check_can(c: &CanConfig) -> Result<(), Refused> {
    if c.interface.is_empty() || c.interface.contains(char::is_whitespace) {
        return Err(Refused::new(
            "interface",
            "must be a non-empty name without spaces",
        ));
    }
    // A timeout shorter than the cycle it supervises would call every input stale.
    for (key, timeout) in [
        ("speed_timeout_ms", c.speed_timeout_ms),
        ("driver_timeout_ms", c.driver_timeout_ms),
        ("yaw_rate_timeout_ms", c.yaw_rate_timeout_ms),
    ] {
        if timeout < c.speed_period_ms {
            return Err(Refused::new(
                key,
                format!(
                    "{timeout} ms is shorter than the input cycle speed_period_ms ({} ms)",
                    c.speed_period_ms
                ),
            ));
        }
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
        let int8: CudaConfig = toml::from_str("precision = \"int8\"").unwrap();
        assert_eq!(int8.precision, adas_detect::Precision::Int8);
        assert!(toml::from_str::<CudaConfig>("precision = \"int4\"").is_err());
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

    /// The error for `text`, which must be refused.
    fn refused(text: &str) -> String {
        Config::parse(text, Path::new("/etc/adas/a.toml"))
            .unwrap_err()
            .to_string()
    }

    /// `MINIMAL` with `line` (`key = value`) in `[table]`, instead of the key's line there
    /// (a new table at the end when absent).
    fn with(table: &str, line: &str) -> String {
        let key = line.split(" =").next().unwrap();
        let minimal: String = MINIMAL
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(|l| format!("{l}\n"))
            .collect();
        let header = format!("[{table}]\n");
        match minimal.find(&header) {
            Some(at) => {
                let at = at + header.len();
                format!("{}{line}\n{}", &minimal[..at], &minimal[at..])
            }
            None => format!("{minimal}\n{header}{line}\n"),
        }
    }

    #[test]
    fn every_range_class_names_file_key_line_and_range() {
        // For each table: a value too large, a negative one, and for floats NaN and infinity.
        // (TOML integers are signed 64-bit: i64::MAX is the largest a file can hold.)
        let cases = [
            ("source", "fps = 1e9", "0.1–1000 frames/s"),
            ("source", "fps = -10", "0.1–1000 frames/s"),
            ("source", "fps = inf", "0.1–1000 frames/s"),
            ("detector", "score_threshold = nan", "0–1"),
            ("detector.cuda", "device = 99", "0–15"),
            ("detector.ort", "threads = 100000", "0–256 threads"),
            (
                "detector.ort.cuda",
                "memory_limit_mib = 9223372036854775807",
                "64–262144 MiB",
            ),
            ("detector.ort.tensorrt", "dla_core = 7", "0–1"),
            ("calibration", "max_reprojection_rms_px = -1", "0.1–50 px"),
            ("ego", "speed_kph = 1000", "0–300 km/h"),
            ("aeb", "max_range_m = 1e6", "5–250 m"),
            ("aeb", "system_delay_s = -0.1", "0–2 s"),
            ("aeb", "partial_decel_mps2 = nan", "0.5–12 m/s²"),
            ("aeb.target_half_width_m", "car = -inf", "0–2 m"),
            (
                "tracker",
                "max_tracks = 9223372036854775807",
                "1–1024 tracks",
            ),
            ("tracker", "max_gap_s = -1", "0.01–10 s"),
            (
                "can",
                "status_period_ms = 9223372036854775807",
                "10–1000 ms",
            ),
            ("can", "status_period_ms = 0", "10–1000 ms"),
            ("record", "pre_event_s = 3600", "0–60 s"),
            ("record", "pre_event_s = -1", "0–60 s"),
            ("record", "post_event_s = nan", "0–60 s"),
            ("record", "jpeg_quality = 0", "1–100"),
            ("metrics", "timeout_ms = 0", "10–30000 ms"),
        ];
        for (table, line, range) in cases {
            let text = with(table, line);
            let err = refused(&text);
            let key = line.split(" =").next().unwrap();
            let at = text.lines().position(|l| l == line).unwrap() + 1;
            assert!(
                err.contains("/etc/adas/a.toml")
                    && err.contains(&format!("line {at}:"))
                    && err.contains(&format!("key `{table}.{key}`"))
                    && err.contains(&format!("allowed range {range}")),
                "{line}: {err}"
            );
        }
        // A negative number for an unsigned key is refused by the parser, with its line.
        let err = refused(&with("can", "status_period_ms = -5"));
        assert!(
            err.contains("status_period_ms") && err.contains("line"),
            "{err}"
        );
    }

    #[test]
    fn rules_between_keys_name_the_key() {
        let err = refused(&with("can", "speed_timeout_ms = 10"));
        assert!(
            err.contains("can.speed_timeout_ms") && err.contains("speed_period_ms (20 ms)"),
            "{err}"
        );
        let err = refused(&with("aeb", "full_ttc_s = 2"));
        assert!(
            err.contains("aeb.full_ttc_s") && err.contains("≤ partial_ttc_s"),
            "{err}"
        );
        let err = refused(&with(
            "tracker",
            "max_position_std_m = 0.5\nmin_position_std_m = 1",
        ));
        assert!(err.contains("tracker.max_position_std_m"), "{err}");
    }

    #[test]
    fn the_metrics_endpoint_is_off_by_default_and_its_address_is_checked() {
        let c = Config::parse(MINIMAL, Path::new("a.toml")).unwrap();
        assert_eq!(c.metrics.listen_addr(), Ok(None));
        let c = Config::parse(
            &with("metrics", "listen = \"[::1]:9108\""),
            Path::new("a.toml"),
        )
        .unwrap();
        assert_eq!(
            c.metrics.listen_addr(),
            Ok(Some("[::1]:9108".parse().unwrap()))
        );
        for bad in ["localhost:9108", "127.0.0.1", "127.0.0.1:65536", ""] {
            let text = with("metrics", &format!("listen = {bad:?}"));
            let err = refused(&text);
            let at = text.lines().position(|l| l.starts_with("listen")).unwrap() + 1;
            assert!(
                err.contains("key `metrics.listen`")
                    && err.contains(&format!("line {at}:"))
                    && err.contains("127.0.0.1:9108"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_ranges_table_in_the_documentation_is_the_code_s() {
        let doc =
            std::fs::read_to_string(Path::new(env!("ADAS_REPO_ROOT")).join("docs/RELIABILITY.md"))
                .unwrap();
        let table = range::markdown(&range_rows());
        assert!(
            doc.contains(&table),
            "docs/RELIABILITY.md must hold this table verbatim (\"Configuration ranges\"):\n{table}"
        );
    }

    /// The `config` fuzz target's corpus (fuzz/corpus/config) through the parser, as the target
    /// drives it: CI's share of that target, whose fuzz build (this crate and the detector stack)
    /// CI's fuzz run leaves out (docs/RELIABILITY.md, "Fuzzing").
    #[test]
    fn the_fuzz_corpus_parses_without_a_panic() {
        let dir = Path::new(env!("ADAS_REPO_ROOT")).join("fuzz/corpus/config");
        let mut inputs = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if let Ok(config) = Config::parse(&String::from_utf8_lossy(&bytes), Path::new("a.toml"))
            {
                let _ = config.can.supervision();
            }
            inputs += 1;
        }
        assert!(inputs > 100, "{}: {inputs} inputs", dir.display());
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
