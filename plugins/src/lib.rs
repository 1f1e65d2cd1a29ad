//! Detector plugins shared by every inference backend.
//!
//! A detector is `preprocess → backend (ONNX inference) → decode → NMS`. Everything here except the
//! backend lives in this crate: it is pure, allocation-light CPU code with no I/O besides reading
//! a model manifest. GPU twins of these plugins come with the CUDA engine.
//!
//! Per frame: [`preprocess_into`] (keep the tensor between frames) → backend →
//! [`Decoder::decode_into`] (normalised model-input boxes) → [`nms()`] →
//! [`InputTransform::to_image`] on each kept box (image pixels).

pub mod anchors;
pub mod decode;
pub mod detection;
pub mod gpu;
pub mod manifest;
pub mod nms;
pub mod preprocess;
pub mod range;
pub mod tensor;

pub use anchors::Anchor;
pub use decode::{DecodeError, Decoder};
pub use detection::{BBox, Detection};
pub use manifest::{Manifest, ManifestError};
pub use nms::nms;
pub use preprocess::{preprocess, preprocess_into, InputTransform, PreprocessError};
pub use tensor::{Tensor, TensorView};

/// Lower-case hex sha256 of `bytes`: how manifests pin the files they describe.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
