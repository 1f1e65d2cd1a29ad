//! Image bytes to pixels, for bytes from outside: a camera, a folder of stills, a recording.
//!
//! The decoders are the `image` crate's. Its JPEG decoder, zune-jpeg 0.5.15 (the newest), panics
//! on some corrupt JPEGs instead of returning an error: fuzz target `camera_frame` found an
//! out-of-bounds store in its AVX2 IDCT, and upstream lists more (zune-image issues 361 and 409,
//! open). A camera glitch or a damaged file must cost one frame, never the daemon, so every
//! decode runs inside [`contained`], which turns such a panic into an error naming the data.
//! The panic message still reaches the log through the panic hook.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use image::{DynamicImage, ImageError, ImageFormat, RgbImage};

/// Runs a decoder on untrusted bytes: its error, or its panic, becomes `Err`.
pub fn contained<T>(decode: impl FnOnce() -> Result<T, ImageError>) -> Result<T, String> {
    // The closure owns nothing that outlives a panic: whatever it half-built is dropped with it.
    match catch_unwind(AssertUnwindSafe(decode)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(format!("the decoder failed on corrupt data ({why})"))
        }
    }
}

/// Decodes image bytes of a known format to RGB.
pub fn rgb(bytes: &[u8], format: ImageFormat) -> Result<RgbImage, String> {
    contained(|| image::load_from_memory_with_format(bytes, format)).map(|img| img.to_rgb8())
}

/// Reads and decodes an image file, its format guessed from its contents.
pub fn open(path: &Path) -> Result<DynamicImage, String> {
    let fail = |e: String| format!("cannot read image {}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    contained(|| image::load_from_memory(&bytes)).map_err(fail)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The smallest input that made zune-jpeg 0.5.15 panic here (see the module comment): a
    /// 16×16 JPEG whose second component is sampled 2×4 against a 1×1 luma.
    fn panicking_jpeg() -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/camera_frame/zune-jpeg-idct-panic");
        // The fuzz input starts with the camera header (format, width, height, stride).
        std::fs::read(path).expect("committed regression input")[7..].to_vec()
    }

    #[test]
    fn a_decoder_panic_is_an_error() {
        let err = rgb(&panicking_jpeg(), ImageFormat::Jpeg).unwrap_err();
        // The panic is in the AVX2 code path; elsewhere the decoder may refuse the data itself.
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            assert!(err.contains("the decoder failed on corrupt data"), "{err}");
        }
    }

    #[test]
    fn a_good_image_decodes() {
        let mut png = Vec::new();
        RgbImage::from_pixel(3, 2, image::Rgb([10, 20, 30]))
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let img = rgb(&png, ImageFormat::Png).unwrap();
        assert_eq!(img.dimensions(), (3, 2));
        assert_eq!(img.get_pixel(2, 1).0, [10, 20, 30]);
    }

    #[test]
    fn a_missing_file_names_itself() {
        let err = open(Path::new("/nonexistent/frame.jpg")).unwrap_err();
        assert!(err.contains("/nonexistent/frame.jpg"), "{err}");
    }
}
