//! The detector: preprocess → backend (ONNX inference) → decode → NMS → original-image pixels.
//!
//! Backends only run the network; everything around it comes from `adas-plugins` and is shared
//! by all of them, so a new backend cannot change what a detection means.

pub mod int8;
#[cfg(feature = "ort")]
mod ort_backend;
pub mod ort_config;
mod tract_backend;

use adas_plugins::decode::Decoder;
use adas_plugins::manifest::{Manifest, RoadUser};
use adas_plugins::{nms, preprocess, BBox, Tensor, TensorView};
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
    #[error("unknown backend `{0}`; this build has: tract")]
    UnknownBackend(String),
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
}

/// Backend settings beyond the kind (from `[detector]` in the config).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackendOptions {
    /// `detector.ort_library`: the ONNX Runtime shared library.
    pub ort_library: Option<PathBuf>,
    /// `[detector.ort]`.
    pub ort: OrtConfig,
}

/// A detection in original-image pixels, with its names resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDetection {
    pub bbox: BBox,
    pub score: f32,
    pub label: String,
    pub class: RoadUser,
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
        #[cfg_attr(not(feature = "ort"), allow(unused_variables))] options: &BackendOptions,
    ) -> Result<Detector, DetectError> {
        let manifest = Manifest::load(manifest_path)?;
        verify_model_hash(&manifest)?;
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
        };
        let decoder = Decoder::new(&manifest).map_err(|e| DetectError::Model {
            path: manifest_path.to_path_buf(),
            message: e.to_string(),
        })?;
        let score_threshold = threshold.unwrap_or(manifest.score_threshold);
        let input = Tensor::zeros(manifest.input.shape.to_vec());
        Ok(Detector {
            manifest,
            backend,
            decoder,
            score_threshold,
            input,
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
        let kept = nms::nms_per_class(
            candidates,
            self.manifest.nms_iou,
            self.manifest.max_detections,
        );
        let detections = kept
            .iter()
            .map(|d| ImageDetection {
                bbox: transform.to_image(&d.bbox),
                score: d.score,
                label: self.manifest.label_name(d.label).to_string(),
                class: self.manifest.class_of(d.label),
            })
            .collect();
        let t3 = Instant::now();
        let times = StageTimes {
            preprocess: t1 - t0,
            inference: t2 - t1,
            decode_nms: t3 - t2,
        };
        Ok((detections, times))
    }
}

/// Refuses an ONNX file whose hash differs from the manifest's: a manifest describes one exact
/// set of weights (anchors, labels and normalisation silently break otherwise).
fn verify_model_hash(manifest: &Manifest) -> Result<(), DetectError> {
    use sha2::{Digest, Sha256};
    let Some(expected) = &manifest.sha256 else {
        return Ok(());
    };
    let bytes = std::fs::read(&manifest.onnx).map_err(|e| DetectError::Model {
        path: manifest.onnx.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let actual: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
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
