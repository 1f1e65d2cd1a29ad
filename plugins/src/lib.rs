//! Detector plugins shared by every inference backend.
//!
//! A detector is `preprocess → backend (ONNX inference) → decode → NMS`. Everything here except the
//! backend lives in this crate: it is pure, allocation-light CPU code with no I/O besides reading
//! a model manifest. GPU twins of these plugins come with the CUDA engine.

pub mod detection;
pub mod manifest;
pub mod tensor;

pub use detection::{BBox, Detection};
pub use manifest::{Manifest, ManifestError};
pub use tensor::Tensor;
