//! `adasd config check` beyond loading: what `run` would refuse frame by frame, or do wrong
//! without a word, found before a frame is run. Loading the config (ranges, rules between
//! keys), the manifest, the model and the calibration, and opening the source (a `file://`
//! that is a folder or missing) are the checks `run` itself makes at start; these are the rest.

use crate::config::{CanConfig, CanMode, Config, MetricsConfig};
use adas_detect::{BackendKind, DetectError};
use adas_io::source::FrameSource;
use adas_plugins::manifest::{Manifest, RoadUser};
use std::fmt;
use std::path::Path;

/// How bad a finding is: an error fails the check (run would reject frames), a warning
/// passes it (the configuration works but may not do what was meant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    fn error(message: String) -> Finding {
        Finding {
            severity: Severity::Error,
            message,
        }
    }

    fn warning(message: String) -> Finding {
        Finding {
            severity: Severity::Warning,
            message,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

/// What `config check` reports; with `--json` this object, field for field (docs/CLI.md).
#[derive(Debug, serde::Serialize)]
pub struct CheckReport {
    /// The config file, as given.
    pub file: String,
    /// No errors: `adasd run` would start and accept frames (warnings allowed).
    pub ok: bool,
    /// What makes the detections (`MODEL on BACKEND`); `null` when the config did not load.
    pub model: Option<String>,
    /// `[source] uri`; `null` when the config did not load.
    pub source: Option<String>,
    /// The road-user classes AEB acts on (empty: AEB is blind).
    pub aeb_acts_on: Vec<&'static str>,
    pub errors: usize,
    pub warnings: usize,
    /// Every finding, errors and warnings, in the order they were found.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// The report of a config that did not even load: its one error.
    pub fn not_loaded(file: &Path, e: &anyhow::Error) -> CheckReport {
        CheckReport::new(
            file,
            None,
            None,
            Vec::new(),
            vec![Finding::error(format!("{e:#}"))],
        )
    }

    fn new(
        file: &Path,
        model: Option<String>,
        source: Option<String>,
        aeb_acts_on: Vec<&'static str>,
        findings: Vec<Finding>,
    ) -> CheckReport {
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        CheckReport {
            file: file.display().to_string(),
            ok: errors == 0,
            model,
            source,
            aeb_acts_on,
            errors,
            warnings: findings.len() - errors,
            findings,
        }
    }
}

/// `config check`: does what `run` does at start (config, model, calibration, source), then
/// [`preflight`]. `Err`: the config, model or source did not load (what `run` would stop on).
pub fn check_file(path: &Path) -> anyhow::Result<CheckReport> {
    let pipeline = crate::service::Pipeline::new(crate::config::Config::load(path)?)?;
    let config = pipeline.config();
    let source = config.source.open(pipeline.image_size())?;
    let manifest = Manifest::load(&config.detector.model)?;
    let findings = preflight(config, &manifest, pipeline.image_size(), source.as_ref());
    Ok(CheckReport::new(
        path,
        Some(pipeline.detections_from()),
        Some(config.source.uri.clone()),
        manifest.road_users().iter().map(|c| c.as_str()).collect(),
        findings,
    ))
}

/// Everything `config check` finds beyond loading, given the loaded config, its manifest, the
/// calibration's image size and the opened source.
pub fn preflight(
    config: &Config,
    manifest: &Manifest,
    calibrated: (u32, u32),
    source: &dyn FrameSource,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(model_outputs(manifest, config.detector.backend));
    findings.extend(frame_size(
        source.frame_size(),
        calibrated,
        &config.source.uri,
        &config.calibration.file,
    ));
    findings.extend(can_input(&config.can, Path::new("/sys/class/net")));
    findings.extend(
        blind_spots(manifest, &config.detector.model)
            .into_iter()
            .map(Finding::warning),
    );
    findings.extend(metrics_endpoint(&config.metrics));
    findings
}

/// The metrics endpoint: an address other machines can reach serves data about the vehicle
/// without authentication; an address that cannot be bound now (port taken, privileged, not
/// this machine's) leaves `run` without the endpoint, retrying.
fn metrics_endpoint(metrics: &MetricsConfig) -> Vec<Finding> {
    // The address was checked when the config was loaded.
    let Ok(Some(addr)) = metrics.listen_addr() else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    if !addr.ip().is_loopback() {
        findings.push(Finding::warning(format!(
            "[metrics] listen = \"{addr}\" is reachable from other machines: anyone who can \
             reach it reads the vehicle's metrics (no authentication); use 127.0.0.1 unless a \
             firewall limits it, and allow the address in the unit's IPAddressAllow"
        )));
    }
    // Port 0 takes any free port: nothing to check.
    if addr.port() != 0 {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            findings.push(Finding::warning(format!(
                "[metrics] listen = \"{addr}\": cannot listen now: {e} ({}); `run` would log \
                 it and retry every 10 s (a daemon already running with this config holds the \
                 port: then all is well)",
                crate::metrics::bind_hint(e.kind())
            )));
        }
    }
    findings
}

/// The model file's outputs against the manifest's head (what every frame's decoding checks).
/// A file that tract cannot analyse is an error for the tract backend (it could not run it
/// either) and a warning for the others, which may run what tract does not.
fn model_outputs(manifest: &Manifest, backend: BackendKind) -> Option<Finding> {
    match adas_detect::check_model_outputs(manifest) {
        Ok(()) => None,
        Err(e @ DetectError::Decode(_)) => Some(Finding::error(format!(
            "model {}: its outputs do not fit the manifest's head, every frame would fail: {e}",
            manifest.onnx.display()
        ))),
        Err(e) if backend == BackendKind::Tract => Some(Finding::error(e.to_string())),
        Err(e) => Some(Finding::warning(format!(
            "the model's outputs were not checked against the manifest ({e}); the first frame \
             will tell"
        ))),
    }
}

/// The source's frame size against the calibration's: a mismatch makes every frame a
/// calibration fault. A source that cannot say its size (raw H.264, recordings) is not
/// compared.
fn frame_size(
    frames: Option<(u32, u32)>,
    calibrated: (u32, u32),
    uri: &str,
    calibration: &Path,
) -> Option<Finding> {
    let (w, h) = frames.filter(|size| *size != calibrated)?;
    let (cw, ch) = calibrated;
    Some(Finding::error(format!(
        "source {uri} gives {w}×{h} frames but the calibration {} was made for {cw}×{ch}: \
         every frame would be skipped as a calibration fault; calibrate for this camera or \
         give [source] width and height",
        calibration.display()
    )))
}

/// The CAN input: a candump log must be readable (run opens it at start); a SocketCAN
/// interface should exist. A missing interface is only a warning, since it may come up after
/// the daemon (the link retries every `reconnect_ms`), but until then no warning reaches the
/// vehicle. `sys_class_net` is /sys/class/net (a folder of its own in tests).
fn can_input(can: &CanConfig, sys_class_net: &Path) -> Option<Finding> {
    match can.mode {
        CanMode::CandumpFile => {
            let log = can.input_log.as_ref()?;
            adas_io::can::replay::CandumpReplay::open(log, 0)
                .err()
                .map(|e| Finding::error(format!("[can] input_log: {e:#}")))
        }
        CanMode::Socketcan => {
            let name = &can.interface;
            if sys_class_net.join(name).exists() {
                return None;
            }
            Some(Finding::warning(format!(
                "[can] interface `{name}` does not exist (no {}): the daemon retries every \
                 reconnect_ms, but until it exists no status or warning reaches the vehicle; \
                 create it: {}",
                sys_class_net.join(name).display(),
                adas_io::can::bring_up_commands(name)
            )))
        }
    }
}

/// Why AEB could never react with this model: its `[classes]` table is empty, or maps every
/// label to `ignored`. `run` logs the same at start.
pub fn blind_spots(manifest: &Manifest, path: &Path) -> Vec<String> {
    let acted_on: Vec<&str> = RoadUser::ALL
        .iter()
        .filter(|c| **c != RoadUser::Ignored)
        .map(|c| c.as_str())
        .collect();
    let why = if manifest.classes.is_empty() {
        "its [classes] table is empty, so every detection is `ignored`"
    } else if manifest.road_users().is_empty() {
        "its [classes] table maps every label to `ignored`"
    } else {
        return Vec::new();
    };
    vec![format!(
        "model manifest {}: {why}: AEB is blind and will never warn or brake; map the labels \
         of road users to {}",
        path.display(),
        acted_on.join(", ")
    )]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frame_size_mismatch_is_an_error_and_unknown_sizes_pass() {
        let calibration = Path::new("calib.toml");
        assert_eq!(
            frame_size(Some((768, 576)), (768, 576), "dir://f", calibration),
            None
        );
        assert_eq!(
            frame_size(None, (768, 576), "file://a.h264", calibration),
            None
        );
        let f = frame_size(Some((640, 480)), (768, 576), "dir://f", calibration).unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.message.contains("640×480") && f.message.contains("768×576"),
            "{f}"
        );
    }

    #[test]
    fn a_metrics_port_in_use_or_open_to_the_network_is_a_warning() {
        let listen = |addr: String| MetricsConfig {
            listen: Some(addr),
            ..MetricsConfig::default()
        };
        assert_eq!(metrics_endpoint(&MetricsConfig::default()), []);
        assert_eq!(metrics_endpoint(&listen("127.0.0.1:0".into())), []);
        let open = metrics_endpoint(&listen("0.0.0.0:0".into()));
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].severity, Severity::Warning);
        assert!(open[0].message.contains("other machines"), "{}", open[0]);
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let busy = metrics_endpoint(&listen(addr.to_string()));
        assert_eq!(busy.len(), 1);
        assert_eq!(busy[0].severity, Severity::Warning);
        assert!(
            busy[0].message.contains(&addr.to_string())
                && busy[0].message.contains("another process has this port"),
            "{}",
            busy[0]
        );
    }

    #[test]
    fn a_missing_socketcan_interface_is_a_warning_with_the_command() {
        let sys = tempfile::tempdir().unwrap();
        let can = CanConfig {
            mode: CanMode::Socketcan,
            interface: "vcan7".into(),
            ..CanConfig::default()
        };
        let f = can_input(&can, sys.path()).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.message.contains("vcan7") && f.message.contains("ip link add dev vcan7 type vcan"),
            "{f}"
        );
        std::fs::create_dir(sys.path().join("vcan7")).unwrap();
        assert_eq!(can_input(&can, sys.path()), None);
        let can0 = CanConfig {
            interface: "can9".into(),
            ..can
        };
        let f = can_input(&can0, sys.path()).unwrap();
        assert!(f.message.contains("type can bitrate"), "{f}");
        // The default candump-file mode without a log needs nothing.
        assert_eq!(can_input(&CanConfig::default(), sys.path()), None);
        let missing = CanConfig {
            input_log: Some(sys.path().join("missing.log")),
            ..CanConfig::default()
        };
        let f = can_input(&missing, sys.path()).unwrap();
        assert_eq!(f.severity, Severity::Error);
        assert!(f.message.contains("missing.log"), "{f}");
    }
}
