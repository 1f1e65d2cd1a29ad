//! The detector: preprocess → backend (ONNX inference) → decode → NMS → original-image pixels.
//!
//! Backends only run the network; everything around it comes from `adas-plugins` and is shared
//! by all of them, so a new backend cannot change what a detection means.

#[cfg(feature = "cuda")]
pub mod cuda;
pub mod int8;
#[cfg(feature = "ort")]
mod ort_backend;
pub mod ort_config;
mod tract_backend;

pub use adas_gpu::{FrameResult, GpuStageTimes, Precision, DEFAULT_CUDA_STREAMS};
use adas_plugins::decode::Decoder;
use adas_plugins::manifest::Manifest;
use adas_plugins::{nms, preprocess, Detection, InputTransform, Tensor, TensorView};
pub use adas_types::ImageDetection;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[cfg(feature = "ort")]
pub use ort_backend::{load_library as load_ort_library, OrtBackend};
pub use ort_config::OrtConfig;
pub use tract_backend::TractBackend;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Manifest(#[from] adas_plugins::ManifestError),
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("model {path}: sha256 is {actual} but the manifest expects {expected}; the manifest does not describe this file")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("preprocessing failed: {0}")]
    Preprocess(String),
    #[error("decoding model outputs failed: {0}")]
    Decode(String),
    #[error("unknown backend `{0}`; this build has: {available}", available = BackendKind::available())]
    UnknownBackend(String),
    #[error(transparent)]
    Gpu(#[from] adas_gpu::GpuError),
    /// The backend's runtime is missing or unusable (e.g. no ONNX Runtime library).
    #[error("{0}")]
    Backend(String),
}

/// One inference engine. Implementations run the network on the preprocessed input tensor and
/// hand the outputs named by the manifest, in [`Manifest::output_names`] order, to `consume`
/// (called once on success). The outputs are borrowed so that a runtime's own output buffers are
/// read in place: copying them into owned tensors on every frame is time the user pays for
/// nothing (≈ 1.8 MB per frame for NanoDet).
pub trait Backend: Send {
    /// Short name for logs and reports, e.g. `tract`.
    fn name(&self) -> &'static str;
    fn infer(
        &mut self,
        input: &Tensor,
        consume: &mut dyn FnMut(&[TensorView<'_>]),
    ) -> Result<(), DetectError>;

    /// [`Backend::infer`] with the outputs copied out (parity tests, calibration tools).
    fn infer_owned(&mut self, input: &Tensor) -> Result<Vec<Tensor>, DetectError> {
        let mut owned = Vec::new();
        self.infer(input, &mut |outputs| {
            owned = outputs.iter().map(TensorView::to_tensor).collect();
        })?;
        Ok(owned)
    }

    /// Backends that run the whole frame → detections path on their own device (the GPU
    /// plugins: preprocessing, decode, NMS) expose it here; the CPU plugins are skipped then.
    fn frame_detector(&mut self) -> Option<&mut dyn FrameDetector> {
        None
    }

    /// (FLOPs, bytes) of one image through the network, when the backend knows (roofline).
    fn cost_per_image(&self) -> Option<(f64, f64)> {
        None
    }

    /// What it runs on, for reports.
    fn device(&self) -> String {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!("CPU ({cores} cores)")
    }
}

/// Frames in, final detections out, on the backend's device.
pub trait FrameDetector {
    /// `frames`: packed RGB images of `width`×`height`, as many as the engine's batch size.
    /// Returns per frame the detections after NMS in normalised model-input coordinates (or
    /// that the device could not hold its candidates), and the transform back to image pixels.
    fn detect_frames(
        &mut self,
        frames: &[&[u8]],
        width: usize,
        height: usize,
    ) -> Result<(Vec<FrameResult>, InputTransform), DetectError>;

    /// The same work run stage by stage with device timers (benchmarks).
    fn profile_stages(
        &mut self,
        frames: &[&[u8]],
        width: usize,
        height: usize,
    ) -> Result<GpuStageTimes, DetectError>;

    /// The network alone as one CUDA graph, input already on the device (whatever the last
    /// frame left there), outputs left there: the work a framework peer times
    /// (tests/bench/pytorch_peer.py), so that the two compare like with like. Returns
    /// `iterations` samples in ms, unsorted, each the host wall time of one graph launch and the
    /// stream synchronize after it, taken after a few untimed launches (benchmarks).
    fn network_latency_ms(&mut self, iterations: usize) -> Result<Vec<f64>, DetectError>;
}

/// Which backend to run a model on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Pure-Rust inference (tract); always built; the embedded default.
    #[default]
    Tract,
    /// ONNX Runtime (CPU, CUDA, TensorRT execution providers); cargo feature `ort`.
    #[cfg(feature = "ort")]
    Ort,
    /// Own GPU engine on cudarc (cuDNN, NVRTC kernels, CUDA graphs); cargo feature `cuda`.
    #[cfg(feature = "cuda")]
    Cuda,
}

impl BackendKind {
    /// The backends compiled into this build, for error messages.
    pub fn available() -> &'static str {
        match (cfg!(feature = "ort"), cfg!(feature = "cuda")) {
            (true, true) => "tract, ort, cuda",
            (true, false) => "tract, ort",
            (false, true) => "tract, cuda",
            (false, false) => "tract (ort and cuda are cargo features)",
        }
    }
}

/// Backend settings beyond the kind (from `[detector]` in the config).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendOptions {
    /// `detector.ort_library`: the ONNX Runtime shared library.
    pub ort_library: Option<PathBuf>,
    /// `[detector.ort]`.
    pub ort: OrtConfig,
    /// `[detector.cuda]`.
    #[cfg(feature = "cuda")]
    pub cuda: cuda::CudaOptions,
}

/// Wall-clock time of each detector stage for one image (for benchmarks and status; never used
/// in decisions).
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub preprocess: Duration,
    pub inference: Duration,
    pub decode_nms: Duration,
}

impl StageTimes {
    pub fn total(&self) -> Duration {
        self.preprocess + self.inference + self.decode_nms
    }
}

/// A loaded model ready to detect on 8-bit RGB images of any size.
pub struct Detector {
    manifest: Manifest,
    backend: Box<dyn Backend>,
    decoder: Decoder,
    score_threshold: f32,
    input: Tensor,
    /// A device candidate overflow was logged (see [`Detector::note_overflow`]).
    overflow_noted: bool,
}

impl Detector {
    /// Loads a manifest and its ONNX file on the given backend. `threshold` overrides the
    /// manifest's default score threshold.
    pub fn load(
        manifest_path: &Path,
        kind: BackendKind,
        threshold: Option<f32>,
    ) -> Result<Detector, DetectError> {
        Self::load_with(manifest_path, kind, threshold, &BackendOptions::default())
    }

    /// [`Detector::load`] with backend settings (ONNX Runtime library and providers).
    pub fn load_with(
        manifest_path: &Path,
        kind: BackendKind,
        threshold: Option<f32>,
        #[cfg_attr(not(any(feature = "ort", feature = "cuda")), allow(unused_variables))]
        options: &BackendOptions,
    ) -> Result<Detector, DetectError> {
        let manifest = Manifest::load(manifest_path)?;
        verify_model_hash(&manifest)?;
        let score_threshold = threshold.unwrap_or(manifest.score_threshold);
        let backend: Box<dyn Backend> = match kind {
            BackendKind::Tract => Box::new(TractBackend::load(&manifest)?),
            #[cfg(feature = "ort")]
            BackendKind::Ort => Box::new(OrtBackend::load(
                &manifest,
                &ort_backend::OrtOptions {
                    library: options.ort_library.clone(),
                    config: options.ort.clone(),
                },
            )?),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Box::new(cuda::CudaBackend::load(
                &manifest,
                score_threshold,
                &options.cuda,
            )?),
        };
        let decoder = Decoder::new(&manifest).map_err(|e| DetectError::Model {
            path: manifest_path.to_path_buf(),
            message: e.to_string(),
        })?;
        let input = Tensor::zeros(manifest.input.shape.to_vec());
        Ok(Detector {
            manifest,
            backend,
            decoder,
            score_threshold,
            input,
            overflow_noted: false,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    pub fn score_threshold(&self) -> f32 {
        self.score_threshold
    }

    /// Detects objects in a packed RGB image; results sorted by score, descending.
    pub fn detect(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<(Vec<ImageDetection>, StageTimes), DetectError> {
        let t0 = Instant::now();
        if let Some(frames) = self.backend.frame_detector() {
            // Frame → detections on the backend's device: one stage as far as the host sees.
            let (mut per_frame, transform) = frames.detect_frames(&[rgb], width, height)?;
            match per_frame.pop() {
                Some(FrameResult::Kept(kept)) => {
                    let detections = self.resolve(&kept, &transform);
                    let times = StageTimes {
                        inference: t0.elapsed(),
                        ..StageTimes::default()
                    };
                    return Ok((detections, times));
                }
                Some(FrameResult::Overflowed { candidates }) => self.note_overflow(candidates),
                None => return Err(DetectError::Inference("the backend gave no result".into())),
            }
        }
        let transform =
            preprocess::preprocess_into(rgb, width, height, &self.manifest.input, &mut self.input)
                .map_err(|e| DetectError::Preprocess(e.to_string()))?;
        let t1 = Instant::now();
        // Inference ends when the outputs are handed over; decoding reads them in place.
        let mut t2 = t1;
        let mut candidates = Vec::new();
        let mut decoded = None;
        let (decoder, threshold) = (&self.decoder, self.score_threshold);
        self.backend.infer(&self.input, &mut |outputs| {
            t2 = Instant::now();
            decoded = Some(decoder.decode_views_into(outputs, threshold, &mut candidates));
        })?;
        match decoded {
            Some(result) => result.map_err(|e| DetectError::Decode(e.to_string()))?,
            None => return Err(DetectError::Inference("the backend gave no outputs".into())),
        }
        let kept = nms::nms(
            candidates,
            self.manifest.nms_iou,
            self.manifest.max_detections,
            self.manifest.nms,
        );
        let detections = self.resolve(&kept, &transform);
        let t3 = Instant::now();
        let times = StageTimes {
            preprocess: t1 - t0,
            inference: t2 - t1,
            decode_nms: t3 - t2,
        };
        Ok((detections, times))
    }

    /// A frame too rich in candidates for the device goes through the host decoder below (same
    /// network, CPU decode and NMS): said once per detector, since a low threshold makes it
    /// every frame.
    fn note_overflow(&mut self, candidates: usize) {
        if self.overflow_noted {
            tracing::debug!(
                candidates,
                "frame decoded on the host (device candidate buffer full)"
            );
        } else {
            tracing::warn!(
                candidates,
                capacity = adas_plugins::gpu::CANDIDATE_CAPACITY,
                threshold = self.score_threshold,
                "more candidates above the score threshold than the device keeps: such frames are decoded on the host (slower); a higher score_threshold avoids it"
            );
            self.overflow_noted = true;
        }
    }

    /// Model-input detections → image pixels with label names and road-user classes.
    fn resolve(&self, kept: &[Detection], transform: &InputTransform) -> Vec<ImageDetection> {
        kept.iter()
            .map(|d| ImageDetection {
                bbox: transform.to_image(&d.bbox),
                score: d.score,
                label: self.manifest.label_name(d.label).to_string(),
                class: self.manifest.class_of(d.label),
            })
            .collect()
    }

    /// What the backend runs on (GPU name and driver, or the CPU).
    pub fn device(&self) -> String {
        self.backend.device()
    }

    /// (FLOPs, bytes) per image, when the backend knows.
    pub fn cost_per_image(&self) -> Option<(f64, f64)> {
        self.backend.cost_per_image()
    }

    /// The backend's whole-frame path, if it has one (benchmarks).
    pub fn frame_detector(&mut self) -> Option<&mut dyn FrameDetector> {
        self.backend.frame_detector()
    }

    /// The backend alone on a preprocessed tensor (benchmarks, parity tests).
    pub fn infer(&mut self, input: &Tensor) -> Result<Vec<Tensor>, DetectError> {
        self.backend.infer_owned(input)
    }
}

/// The model file's outputs for the manifest's input (names, and shapes from tract's shape
/// inference, whatever the backend: every backend loads the same file) are what the
/// manifest's head decodes; nothing runs. A mismatch is [`DetectError::Decode`], found here
/// instead of on every frame; a file tract cannot analyse is [`DetectError::Model`].
pub fn check_model_outputs(manifest: &Manifest) -> Result<(), DetectError> {
    let shapes = tract_backend::output_shapes(manifest)?;
    let decoder = Decoder::new(manifest).map_err(|e| DetectError::Model {
        path: manifest.onnx.clone(),
        message: e.to_string(),
    })?;
    let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    decoder
        .check_shapes(&shapes)
        .map_err(|e| DetectError::Decode(e.to_string()))
}

/// A backend's input must have the model's shape exactly (batch included).
fn check_input_shape(input: &Tensor, model: &[usize]) -> Result<(), DetectError> {
    if input.shape == model {
        Ok(())
    } else {
        Err(DetectError::Inference(format!(
            "input shape {:?} does not match the model's {:?}",
            input.shape, model
        )))
    }
}

/// Refuses an ONNX file whose hash differs from the manifest's: a manifest describes one exact
/// set of weights (anchors, labels and normalisation silently break otherwise).
fn verify_model_hash(manifest: &Manifest) -> Result<(), DetectError> {
    let Some(expected) = &manifest.sha256 else {
        return Ok(());
    };
    let bytes = std::fs::read(&manifest.onnx).map_err(|e| DetectError::Model {
        path: manifest.onnx.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let actual = adas_plugins::sha256_hex(&bytes);
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DetectError::HashMismatch {
            path: manifest.onnx.clone(),
            expected: expected.clone(),
            actual,
        })
    }
}
