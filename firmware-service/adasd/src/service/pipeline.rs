//! One frame through the detector and the core: [`Pipeline`] is the detector (rebuilt after
//! repeated failures) plus [`adas_core::Core`]; a frame that cannot be decided is a
//! [`FrameFault`], which the run loop counts and reports on CAN.

use crate::config::Config;
use adas_calibration::{CalibrationFile, Homography};
use adas_core::aeb::decider::Decision;
use adas_core::aeb::{EgoState, InhibitReason};
use adas_core::can::messages::fault;
use adas_core::perception::{BevProjection, Track};
use adas_core::{Core, Outcome};
use adas_detect::{Detector, ImageDetection, StageTimes};
use adas_io::source::{Frame, FrameError};
use adas_plugins::manifest::Manifest;

/// Everything decided about one frame.
pub struct FrameOutcome {
    /// Size of the image the detections are in, px.
    pub image_size: (u32, u32),
    pub detections: Vec<ImageDetection>,
    pub bev: BevProjection,
    /// Every live track after this frame (tentative and confirmed).
    pub tracks: Vec<Track>,
    pub decision: Decision,
    pub times: StageTimes,
}

/// Why a frame produced no decision.
#[derive(Debug, thiserror::Error)]
pub enum FrameFault {
    #[error("{0}")]
    Lost(FrameError),
    #[error(
        "frame {seq}: image is {got_w}×{got_h} but the calibration was made for {want_w}×{want_h}"
    )]
    SizeMismatch {
        seq: u64,
        got_w: u32,
        got_h: u32,
        want_w: u32,
        want_h: u32,
    },
    #[error("frame {seq}: detector failed: {message}")]
    Detector { seq: u64, message: String },
}

impl FrameFault {
    pub(crate) fn bits(&self) -> u8 {
        match self {
            FrameFault::Lost(_) => fault::FRAME_LOST,
            FrameFault::SizeMismatch { .. } => fault::CALIBRATION,
            FrameFault::Detector { .. } => fault::DETECTOR,
        }
    }
}

/// The per-frame processing, free of files and clocks (stage timings aside).
/// Consecutive detector failures after which the detector is rebuilt.
const RELOAD_DETECTOR_AFTER: u32 = 3;

/// Image pixels per detector-input pixel along the coarser axis (the tracker's noise is
/// isotropic; letterboxing scales both axes alike).
fn image_px_per_input_px(image: (u32, u32), input: (usize, usize)) -> f64 {
    let axis = |i: u32, n: usize| f64::from(i) / n.max(1) as f64;
    axis(image.0, input.0).max(axis(image.1, input.1))
}

pub struct Pipeline {
    /// `None` in object-list replays, which take the detections from a recording.
    detector: Option<Detector>,
    detector_failures: u32,
    core: Core,
    config: Config,
}

impl Pipeline {
    pub fn new(config: Config) -> anyhow::Result<Pipeline> {
        let detector = Detector::load_with(
            &config.detector.model,
            config.detector.backend,
            config.detector.score_threshold,
            &config.detector.backend_options(),
        )?;
        for blind in crate::check::blind_spots(detector.manifest(), &config.detector.model) {
            tracing::warn!("{blind}");
        }
        Self::with_detector(config, Some(detector))
    }

    /// BEV, tracker and decider only, for object-list replays: the detections come from a
    /// recording ([`Pipeline::process_detected`]), so no model is loaded.
    pub fn object_list(config: Config) -> anyhow::Result<Pipeline> {
        Self::with_detector(config, None)
    }

    fn with_detector(config: Config, detector: Option<Detector>) -> anyhow::Result<Pipeline> {
        let calibration = CalibrationFile::load(&config.calibration.file)?;
        if let Some(rms) = calibration.reprojection_rms_px {
            if rms > config.calibration.max_reprojection_rms_px {
                tracing::warn!(
                    file = %config.calibration.file.display(),
                    rms_px = rms,
                    bound_px = config.calibration.max_reprojection_rms_px,
                    "calibration reprojection RMS is above the configured bound; distances may be off — recalibrate"
                );
            }
        }
        let image_size = (calibration.image_width, calibration.image_height);
        let tracker = config.tracker.clone();
        let tracker = if tracker.pixel_sigma_px.is_some() {
            tracker
        } else {
            let input = match &detector {
                Some(d) => d.manifest().input.size(),
                None => Manifest::load(&config.detector.model)
                    .map_err(|e| anyhow::anyhow!("{e} (the tracker's pixel noise follows the detector's input size; or set [tracker] pixel_sigma_px)"))?
                    .input
                    .size(),
            };
            tracker.for_detector_scale(image_px_per_input_px(image_size, input))
        };
        let core = Core::new(
            calibration.homography()?,
            image_size,
            tracker,
            config.aeb.clone(),
        );
        Ok(Pipeline {
            detector,
            detector_failures: 0,
            core,
            config,
        })
    }

    /// A GPU whose context broke (driver reset, device lost, sticky kernel error) fails every
    /// frame until the engine is rebuilt: after a few consecutive failures, try to load the
    /// detector again; until that works, frames keep failing and CAN says so.
    fn reload_detector(&mut self) {
        let d = &self.config.detector;
        match Detector::load_with(&d.model, d.backend, d.score_threshold, &d.backend_options()) {
            Ok(detector) => {
                tracing::warn!(
                    failures = self.detector_failures,
                    "detector reloaded after consecutive failures"
                );
                self.detector = Some(detector);
            }
            Err(e) => tracing::error!(
                failures = self.detector_failures,
                "detector reload failed: {e}"
            ),
        }
    }

    /// What makes the detections, for logs: "MODEL on BACKEND", or "recorded detections".
    pub fn detections_from(&self) -> String {
        self.detector.as_ref().map_or_else(
            || "recorded detections".to_string(),
            |d| format!("{} on {}", d.manifest().name, d.backend_name()),
        )
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn homography(&self) -> &Homography {
        self.core.homography()
    }

    /// The image size the calibration was made for (cameras are asked for it).
    pub fn image_size(&self) -> (u32, u32) {
        self.core.image_size()
    }

    pub fn ego_speed_mps(&self) -> f64 {
        self.config.ego.speed_kph / 3.6
    }

    /// One frame through the detector and the core, with the ego sample from the CAN input or
    /// the configuration (`None`: none yet, the decider is inhibited).
    pub fn process_with_ego(
        &mut self,
        frame: &Frame,
        ego: Option<EgoState>,
    ) -> Result<FrameOutcome, FrameFault> {
        let (w, h) = frame.image.dimensions();
        self.check_size(frame.seq, (w, h))?;
        let Some(detector) = self.detector.as_mut() else {
            return Err(FrameFault::Detector {
                seq: frame.seq,
                message:
                    "no detector loaded (object-list replay: detections come from the recording)"
                        .into(),
            });
        };
        let (detections, times) =
            match detector.detect(frame.image.as_raw(), w as usize, h as usize) {
                Ok(r) => {
                    self.detector_failures = 0;
                    r
                }
                Err(e) => {
                    self.detector_failures += 1;
                    if self.detector_failures.is_multiple_of(RELOAD_DETECTOR_AFTER) {
                        self.reload_detector();
                    }
                    return Err(FrameFault::Detector {
                        seq: frame.seq,
                        message: e.to_string(),
                    });
                }
            };
        self.process_detected(
            frame.seq,
            frame.t_capture_ns,
            (w, h),
            detections,
            times,
            ego,
        )
    }

    fn check_size(&self, seq: u64, (w, h): (u32, u32)) -> Result<(), FrameFault> {
        let (want_w, want_h) = self.core.image_size();
        if (w, h) != (want_w, want_h) {
            return Err(FrameFault::SizeMismatch {
                seq,
                got_w: w,
                got_h: h,
                want_w,
                want_h,
            });
        }
        Ok(())
    }

    /// Everything after the detector: BEV, tracking, decision. Object-list replays start here
    /// with the detections of a recording.
    pub fn process_detected(
        &mut self,
        seq: u64,
        t_ns: u64,
        (w, h): (u32, u32),
        detections: Vec<ImageDetection>,
        times: StageTimes,
        ego: Option<EgoState>,
    ) -> Result<FrameOutcome, FrameFault> {
        self.check_size(seq, (w, h))?;
        let Outcome {
            bev,
            tracks,
            decision,
        } = self.core.step(t_ns, &detections, ego.as_ref());
        Ok(FrameOutcome {
            image_size: (w, h),
            detections,
            bev,
            tracks,
            decision,
            times,
        })
    }

    /// A frame as the run loop has it: the ego sample from the CAN link (`None`: no CAN input,
    /// the configured speed) and, in object-list replays, the recorded detections.
    pub fn decide(
        &mut self,
        frame: Frame,
        ego: Option<Option<EgoState>>,
        can_inhibit: Option<InhibitReason>,
        recorded: Option<Option<adas_record::schema::DetectionsMsg>>,
    ) -> Result<(Frame, FrameOutcome), FrameFault> {
        let ego = ego.unwrap_or_else(|| {
            // Without a CAN input: the configured speed, stamped with the frame's time.
            Some(EgoState::with_speed(
                frame.t_capture_ns,
                self.ego_speed_mps(),
            ))
        });
        let mut outcome = match recorded {
            None => self.process_with_ego(&frame, ego)?,
            Some(recorded) => {
                let m = recorded.ok_or_else(|| FrameFault::Detector {
                    seq: frame.seq,
                    message: "no detections recorded for this frame".into(),
                })?;
                self.process_detected(
                    frame.seq,
                    frame.t_capture_ns,
                    (m.width, m.height),
                    m.detections,
                    StageTimes::default(),
                    ego,
                )?
            }
        };
        // The supervision knows better why the ego input is unusable (stale vs invalid).
        if let (Some(reason), Some(_)) = (can_inhibit, outcome.decision.inhibit) {
            outcome.decision.inhibit = Some(reason);
        }
        Ok((frame, outcome))
    }
}
