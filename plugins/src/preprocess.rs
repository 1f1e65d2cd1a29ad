//! Frame → model input tensor: bilinear resize (stretch or letterbox), colour order,
//! normalisation, NCHW/NHWC layout; and the inverse mapping of boxes back to image pixels.
//!
//! The resize follows OpenCV `cv2.resize(..., interpolation=INTER_LINEAR)`: half-pixel centres
//! (`src = (dst + 0.5) · src_size / dst_size − 0.5`), source coordinates clamped to the image,
//! no anti-aliasing when shrinking. Unlike OpenCV on 8-bit images, values are not rounded back to
//! integers (they go straight into the `f32` tensor), so results differ from `cv2.resize` on
//! `uint8` input by at most 0.5 pixel units before normalisation.

use crate::detection::BBox;
use crate::manifest::{ColourOrder, InputSpec, Layout, PadPosition, ResizeMode, Sampling};
use crate::tensor::Tensor;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreprocessError {
    #[error("image size {width}x{height} is empty")]
    EmptyImage { width: usize, height: usize },
    #[error("RGB buffer for a {width}x{height} image must hold {expected} bytes, got {got}")]
    BadLength {
        width: usize,
        height: usize,
        expected: usize,
        got: usize,
    },
    #[error("model input shape {shape:?} ({layout:?}) is not a batch of one 3-channel image")]
    BadInputShape { shape: [usize; 4], layout: Layout },
}

/// How a model-input box maps back to the original image: model pixel = image pixel · scale + pad.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputTransform {
    /// Original image size in pixels.
    pub image_width: usize,
    pub image_height: usize,
    /// Model input size in pixels.
    pub model_width: usize,
    pub model_height: usize,
    /// Resize factor per axis (model pixels per image pixel).
    pub scale_x: f32,
    pub scale_y: f32,
    /// Offset of the image's top-left corner inside the model input, in model pixels.
    pub pad_x: f32,
    pub pad_y: f32,
}

impl InputTransform {
    /// Maps a box in normalised model-input coordinates (`[0, 1]` of the model input width and
    /// height) to original-image pixels: undoes the padding and scale, then clamps to the image.
    pub fn to_image(&self, b: &BBox) -> BBox {
        let mw = self.model_width as f32;
        let mh = self.model_height as f32;
        let iw = self.image_width as f32;
        let ih = self.image_height as f32;
        let x = |v: f32| ((v * mw - self.pad_x) / self.scale_x).clamp(0.0, iw);
        let y = |v: f32| ((v * mh - self.pad_y) / self.scale_y).clamp(0.0, ih);
        BBox::new(x(b.x1), y(b.y1), x(b.x2), y(b.y2))
    }

    /// The inverse of [`InputTransform::to_image`] (without clamping): image pixels → normalised
    /// model-input coordinates.
    pub fn to_model(&self, b: &BBox) -> BBox {
        let mw = self.model_width as f32;
        let mh = self.model_height as f32;
        let x = |v: f32| (v * self.scale_x + self.pad_x) / mw;
        let y = |v: f32| (v * self.scale_y + self.pad_y) / mh;
        BBox::new(x(b.x1), y(b.y1), x(b.x2), y(b.y2))
    }
}

/// Preprocesses a packed 8-bit RGB image (`rgb.len() == width · height · 3`) into a new tensor of
/// shape `spec.shape`. See [`preprocess_into`] for the allocation-free variant.
pub fn preprocess(
    rgb: &[u8],
    width: usize,
    height: usize,
    spec: &InputSpec,
) -> Result<(Tensor, InputTransform), PreprocessError> {
    let mut out = Tensor {
        shape: Vec::new(),
        data: Vec::new(),
    };
    let transform = preprocess_into(rgb, width, height, spec, &mut out)?;
    Ok((out, transform))
}

/// Like [`preprocess`], writing into `out`. `out` is reshaped to `spec.shape` if needed; when it
/// already has that shape (e.g. reused from the previous frame) nothing is allocated.
pub fn preprocess_into(
    rgb: &[u8],
    width: usize,
    height: usize,
    spec: &InputSpec,
    out: &mut Tensor,
) -> Result<InputTransform, PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::EmptyImage { width, height });
    }
    let expected = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(3))
        .unwrap_or(usize::MAX);
    if rgb.len() != expected {
        return Err(PreprocessError::BadLength {
            width,
            height,
            expected,
            got: rgb.len(),
        });
    }
    let channels = match spec.layout {
        Layout::Nchw => spec.shape[1],
        Layout::Nhwc => spec.shape[3],
    };
    let (mw, mh) = spec.size();
    if spec.shape[0] != 1 || channels != 3 || mw == 0 || mh == 0 {
        return Err(PreprocessError::BadInputShape {
            shape: spec.shape,
            layout: spec.layout,
        });
    }

    let (rw, rh, ox, oy) = placement(width, height, spec);

    let len = mw * mh * 3;
    if out.shape.as_slice() != spec.shape.as_slice() || out.data.len() != len {
        out.shape.clear();
        out.shape.extend_from_slice(&spec.shape);
        out.data.clear();
        out.data.resize(len, 0.0);
    }

    // The model's channel order, and the normalisation as value·mul + add per model channel.
    let swap_rb = spec.colour == ColourOrder::Bgr;
    let mul: [f32; 3] = std::array::from_fn(|c| 1.0 / spec.std[c]);
    let add: [f32; 3] = std::array::from_fn(|c| -spec.mean[c] / spec.std[c]);
    let plane = mw * mh;

    if rw != mw || rh != mh {
        let pad: [f32; 3] = std::array::from_fn(|c| (spec.pad_value - spec.mean[c]) / spec.std[c]);
        match spec.layout {
            Layout::Nchw => {
                for (c, chunk) in out.data.chunks_exact_mut(plane).enumerate() {
                    chunk.fill(pad[c % 3]);
                }
            }
            Layout::Nhwc => {
                for px in out.data.chunks_exact_mut(3) {
                    px.copy_from_slice(&pad);
                }
            }
        }
    }

    // Separable bilinear resize. Each source row the output needs is resized horizontally once,
    // into `rows` as 4-lane pixels (R, G, B, padding): the fourth lane lets the compiler load,
    // convert and interpolate a pixel as one SIMD vector. Each output row is then the vertical
    // blend of two such rows, normalised and stored once in its final layout and channel order.
    // When shrinking, consecutive output rows share source rows (y1 of one is y0 of the next), so
    // about one horizontal row is computed per source row instead of two per output row.
    // The arithmetic and its order are those of the direct per-pixel formula (lerp along x for
    // the top and bottom rows, then along y, then `· mul + add`), so the result is bit-identical
    // to it (`tests::matches_reference`); only the amount of repeated work changed.
    let sx = width as f32 / rw as f32;
    let sy = height as f32 / rh as f32;
    // Column taps are the same for every row: compute them once per frame, as byte offsets.
    let taps: Vec<ColumnTap> = (0..rw)
        .map(|dx| {
            let (x0, x1, fx) = source_coord(dx, sx, width, spec.sampling);
            ColumnTap {
                lo: x0 * 3,
                hi: x1 * 3,
                w: fx,
            }
        })
        .collect();
    // Normalisation per lane (R, G, B, padding) of a horizontal row's pixel.
    let model_channel = |lane: usize| if swap_rb { 2 - lane } else { lane };
    let norm = Normalise {
        mul: std::array::from_fn(|l| if l < 3 { mul[model_channel(l)] } else { 1.0 }),
        add: std::array::from_fn(|l| if l < 3 { add[model_channel(l)] } else { 0.0 }),
    };

    let row_bytes = width * 3;
    let mut rows = [vec![[0f32; 4]; rw], vec![[0f32; 4]; rw]];
    // Which source row each of `rows` holds.
    let mut held: [Option<usize>; 2] = [None, None];
    let data = out.data.as_mut_slice();
    for dy in 0..rh {
        let (y0, y1, fy) = source_coord(dy, sy, height, spec.sampling);
        let fetch = |y: usize, dst: &mut Vec<[f32; 4]>| resize_row(rgb, y * row_bytes, &taps, dst);
        let top = match held.iter().position(|&h| h == Some(y0)) {
            Some(i) => i,
            None => {
                // Keep the slot holding y1, if any.
                let i = usize::from(held[0] == Some(y1));
                fetch(y0, &mut rows[i]);
                held[i] = Some(y0);
                i
            }
        };
        let bottom = match held.iter().position(|&h| h == Some(y1)) {
            Some(i) => i,
            None => {
                fetch(y1, &mut rows[1 - top]);
                held[1 - top] = Some(y1);
                1 - top
            }
        };
        let (top, bottom) = (&rows[top], &rows[bottom]);
        let start = (oy + dy) * mw + ox;
        let out = RowFormat {
            norm: &norm,
            layout: spec.layout,
            plane,
        };
        if swap_rb {
            blend_row::<true>(top, bottom, fy, &out, data, start);
        } else {
            blend_row::<false>(top, bottom, fy, &out, data, start);
        }
    }

    Ok(transform(width, height, spec))
}

/// The box transform of a `width`×`height` image for `spec` (see [`placement`]).
pub(crate) fn transform(width: usize, height: usize, spec: &InputSpec) -> InputTransform {
    let (mw, mh) = spec.size();
    let (rw, rh, ox, oy) = placement(width, height, spec);
    InputTransform {
        image_width: width,
        image_height: height,
        model_width: mw,
        model_height: mh,
        scale_x: rw as f32 / width as f32,
        scale_y: rh as f32 / height as f32,
        pad_x: ox as f32,
        pad_y: oy as f32,
    }
}

/// Size and position of the resized image inside the model input: (width, height, x offset,
/// y offset) in model pixels. Shared with the GPU twin ([`crate::gpu`]).
pub(crate) fn placement(
    width: usize,
    height: usize,
    spec: &InputSpec,
) -> (usize, usize, usize, usize) {
    let (mw, mh) = spec.size();
    match spec.resize {
        ResizeMode::Stretch => (mw, mh, 0, 0),
        ResizeMode::Letterbox => {
            let s = (mw as f64 / width as f64).min(mh as f64 / height as f64);
            let rw = ((width as f64 * s).round() as usize).clamp(1, mw);
            let rh = ((height as f64 * s).round() as usize).clamp(1, mh);
            match spec.pad {
                PadPosition::BottomRight => (rw, rh, 0, 0),
                PadPosition::Centre => (rw, rh, (mw - rw) / 2, (mh - rh) / 2),
            }
        }
    }
}

/// Horizontal bilinear taps of one output column: byte offsets of the two source pixels in a
/// packed RGB row and the weight of the second one.
#[derive(Debug, Clone, Copy)]
struct ColumnTap {
    lo: usize,
    hi: usize,
    w: f32,
}

/// The RGB pixel at byte offset `at` of the image as floats, plus the next byte in lane 3 (0 after
/// the image's last pixel; never used). Loading four bytes lets the compiler convert and
/// interpolate the pixel as one 4-lane vector instead of three scalars.
#[inline(always)]
fn pixel4(rgb: &[u8], at: usize) -> [f32; 4] {
    match rgb.get(at..).and_then(|s| s.first_chunk::<4>()) {
        Some(p) => p.map(f32::from),
        None => match rgb.get(at..).and_then(|s| s.first_chunk::<3>()) {
            Some(&[r, g, b]) => [r, g, b, 0].map(f32::from),
            None => [0.0; 4],
        },
    }
}

/// Resizes the packed RGB source row starting at byte `row` of `rgb` horizontally into `dst`, one
/// 4-lane pixel (R, G, B, padding) per tap: per channel `p0 + (p1 − p0) · w`.
#[inline]
fn resize_row(rgb: &[u8], row: usize, taps: &[ColumnTap], dst: &mut [[f32; 4]]) {
    for (t, d) in taps.iter().zip(dst) {
        let (p0, p1) = (pixel4(rgb, row + t.lo), pixel4(rgb, row + t.hi));
        *d = std::array::from_fn(|c| p0[c] + (p1[c] - p0[c]) * t.w);
    }
}

/// `value · mul + add` per lane of a horizontal row's pixel (R, G, B, padding).
struct Normalise {
    mul: [f32; 4],
    add: [f32; 4],
}

/// How model-input values are written: normalisation, layout, and the size of one channel
/// plane (NCHW).
struct RowFormat<'a> {
    norm: &'a Normalise,
    layout: Layout,
    plane: usize,
}

/// Output row starting at pixel `start` of the model input: per pixel and channel
/// `(top + (bottom − top) · fy) · mul + add`, stored in the model's layout and channel order
/// (`BGR`: R and B swapped).
#[inline]
fn blend_row<const BGR: bool>(
    top: &[[f32; 4]],
    bottom: &[[f32; 4]],
    fy: f32,
    out: &RowFormat<'_>,
    data: &mut [f32],
    start: usize,
) {
    let RowFormat {
        norm,
        layout,
        plane,
    } = *out;
    let (first, last) = if BGR { (2, 0) } else { (0, 2) };
    let blend = |t: &[f32; 4], b: &[f32; 4]| -> [f32; 4] {
        std::array::from_fn(|c| (t[c] + (b[c] - t[c]) * fy) * norm.mul[c] + norm.add[c])
    };
    let span = start..start + top.len();
    match layout {
        Layout::Nchw => {
            let (p0, rest) = data.split_at_mut(plane);
            let (p1, p2) = rest.split_at_mut(plane);
            let (Some(o0), Some(o1), Some(o2)) = (
                p0.get_mut(span.clone()),
                p1.get_mut(span.clone()),
                p2.get_mut(span),
            ) else {
                return;
            };
            for ((((t, b), o0), o1), o2) in top.iter().zip(bottom).zip(o0).zip(o1).zip(o2) {
                let v = blend(t, b);
                (*o0, *o1, *o2) = (v[first], v[1], v[last]);
            }
        }
        Layout::Nhwc => {
            let Some(dst) = data.get_mut(span.start * 3..span.end * 3) else {
                return;
            };
            for ((t, b), o) in top.iter().zip(bottom).zip(dst.chunks_exact_mut(3)) {
                let v = blend(t, b);
                o.copy_from_slice(&[v[first], v[1], v[last]]);
            }
        }
    }
}

/// Bilinear source taps for destination index `d`: (lower index, upper index, weight of the
/// upper one), clamped to `[0, n − 1]`.
#[inline]
fn source_coord(d: usize, scale: f32, n: usize, sampling: Sampling) -> (usize, usize, f32) {
    let s = match sampling {
        Sampling::HalfPixel => ((d as f32 + 0.5) * scale - 0.5).max(0.0),
        Sampling::Asymmetric => d as f32 * scale,
    };
    let i = s.floor() as usize;
    if i + 1 >= n {
        (n - 1, n - 1, 0.0)
    } else {
        (i, i + 1, s - i as f32)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The direct per-pixel formula (the implementation before the separable fast path): four
    /// source pixels, lerp along x (top and bottom), then along y, then `· mul + add`, written
    /// per pixel. Only the output values; validation is the fast path's.
    fn reference_preprocess(rgb: &[u8], width: usize, height: usize, spec: &InputSpec) -> Vec<f32> {
        let pixel = |row: &[u8], x: usize| -> [f32; 3] {
            match row.get(x * 3..x * 3 + 3) {
                Some(&[r, g, b]) => [f32::from(r), f32::from(g), f32::from(b)],
                _ => [0.0; 3],
            }
        };
        let (mw, mh) = spec.size();
        let mut out = Tensor::zeros(spec.shape.to_vec());
        // Size and position of the resized image inside the model input.
        let (rw, rh, ox, oy) = match spec.resize {
            ResizeMode::Stretch => (mw, mh, 0, 0),
            ResizeMode::Letterbox => {
                let s = (mw as f64 / width as f64).min(mh as f64 / height as f64);
                let rw = ((width as f64 * s).round() as usize).clamp(1, mw);
                let rh = ((height as f64 * s).round() as usize).clamp(1, mh);
                match spec.pad {
                    PadPosition::BottomRight => (rw, rh, 0, 0),
                    PadPosition::Centre => (rw, rh, (mw - rw) / 2, (mh - rh) / 2),
                }
            }
        };

        // The model's channel order, and the normalisation as value·mul + add per model channel.
        let swap_rb = spec.colour == ColourOrder::Bgr;
        let mul: [f32; 3] = std::array::from_fn(|c| 1.0 / spec.std[c]);
        let add: [f32; 3] = std::array::from_fn(|c| -spec.mean[c] / spec.std[c]);
        let plane = mw * mh;

        if rw != mw || rh != mh {
            let pad: [f32; 3] =
                std::array::from_fn(|c| (spec.pad_value - spec.mean[c]) / spec.std[c]);
            match spec.layout {
                Layout::Nchw => {
                    for (c, chunk) in out.data.chunks_exact_mut(plane).enumerate() {
                        chunk.fill(pad[c % 3]);
                    }
                }
                Layout::Nhwc => {
                    for px in out.data.chunks_exact_mut(3) {
                        px.copy_from_slice(&pad);
                    }
                }
            }
        }

        let sx = width as f32 / rw as f32;
        let sy = height as f32 / rh as f32;
        // Column taps are the same for every row: compute them once per frame.
        let columns: Vec<(usize, usize, f32)> = (0..rw)
            .map(|dx| source_coord(dx, sx, width, spec.sampling))
            .collect();
        let data = out.data.as_mut_slice();
        for dy in 0..rh {
            let (y0, y1, fy) = source_coord(dy, sy, height, spec.sampling);
            let row0 = &rgb[y0 * width * 3..(y0 + 1) * width * 3];
            let row1 = &rgb[y1 * width * 3..(y1 + 1) * width * 3];
            let row_start = (oy + dy) * mw + ox;
            for (dx, &(x0, x1, fx)) in columns.iter().enumerate() {
                // Whole 3-byte pixels: one bounds check each instead of one per channel.
                let (p00, p01, p10, p11) = (
                    pixel(row0, x0),
                    pixel(row0, x1),
                    pixel(row1, x0),
                    pixel(row1, x1),
                );
                let mut px: [f32; 3] = std::array::from_fn(|c| {
                    let top = p00[c] + (p01[c] - p00[c]) * fx;
                    let bottom = p10[c] + (p11[c] - p10[c]) * fx;
                    top + (bottom - top) * fy
                });
                if swap_rb {
                    px.swap(0, 2);
                }
                let px: [f32; 3] = std::array::from_fn(|c| px[c] * mul[c] + add[c]);
                let i = row_start + dx;
                match spec.layout {
                    Layout::Nchw => {
                        data[i] = px[0];
                        data[plane + i] = px[1];
                        data[2 * plane + i] = px[2];
                    }
                    Layout::Nhwc => data[i * 3..i * 3 + 3].copy_from_slice(&px),
                }
            }
        }

        out.data
    }

    fn arb_spec() -> impl Strategy<Value = InputSpec> {
        (
            (1usize..24, 1usize..24),
            prop::bool::ANY,
            prop::bool::ANY,
            prop::sample::select(vec![
                (ResizeMode::Stretch, PadPosition::BottomRight),
                (ResizeMode::Letterbox, PadPosition::BottomRight),
                (ResizeMode::Letterbox, PadPosition::Centre),
            ]),
            prop::bool::ANY,
            (
                0f32..255.0,
                prop::array::uniform3(0f32..255.0),
                prop::array::uniform3(0.5f32..128.0),
            ),
        )
            .prop_map(
                |((w, h), nhwc, bgr, (resize, pad), asym, (pad_value, mean, std))| {
                    let layout = if nhwc { Layout::Nhwc } else { Layout::Nchw };
                    let mut s = spec(w, h, layout, resize);
                    s.colour = if bgr {
                        ColourOrder::Bgr
                    } else {
                        ColourOrder::Rgb
                    };
                    s.pad = pad;
                    s.sampling = if asym {
                        Sampling::Asymmetric
                    } else {
                        Sampling::HalfPixel
                    };
                    s.pad_value = pad_value;
                    s.mean = mean;
                    s.std = std;
                    s
                },
            )
    }

    fn arb_image() -> impl Strategy<Value = (usize, usize, Vec<u8>)> {
        (1usize..40, 1usize..40).prop_flat_map(|(w, h)| {
            prop::collection::vec(any::<u8>(), w * h * 3).prop_map(move |px| (w, h, px))
        })
    }

    proptest! {
        /// The separable fast path is bit-identical to the direct formula, for any image and
        /// model size (shrinking and enlarging), layout, colour order, resize mode, sampling and
        /// normalisation.
        #[test]
        fn matches_reference((w, h, rgb) in arb_image(), s in arb_spec()) {
            let (t, _) = preprocess(&rgb, w, h, &s).unwrap();
            let expected = reference_preprocess(&rgb, w, h, &s);
            prop_assert_eq!(t.data.len(), expected.len());
            for (i, (g, e)) in t.data.iter().zip(&expected).enumerate() {
                prop_assert_eq!(g.to_bits(), e.to_bits(), "value {} {} vs {}", i, g, e);
            }
        }
    }

    #[test]
    fn matches_reference_on_the_shipped_models() {
        // A 768×576 frame (the benchmark size) of pseudo-random pixels into both shipped inputs.
        let (w, h) = (768, 576);
        let mut x = 0x2545_f491_u32;
        let rgb: Vec<u8> = (0..w * h * 3)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for m in [
            "nanodet_m_coco_416.toml",
            "ssdlite_mobilenet_v2_pedestrian_300.toml",
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../models")
                .join(m);
            let s = crate::manifest::Manifest::load(&path).unwrap().input;
            let (t, _) = preprocess(&rgb, w, h, &s).unwrap();
            let expected = reference_preprocess(&rgb, w, h, &s);
            assert!(
                t.data
                    .iter()
                    .zip(&expected)
                    .all(|(g, e)| g.to_bits() == e.to_bits()),
                "{m}"
            );
        }
    }

    fn spec(w: usize, h: usize, layout: Layout, resize: ResizeMode) -> InputSpec {
        InputSpec {
            name: "in".into(),
            shape: match layout {
                Layout::Nchw => [1, 3, h, w],
                Layout::Nhwc => [1, h, w, 3],
            },
            layout,
            colour: ColourOrder::Rgb,
            resize,
            pad: PadPosition::BottomRight,
            sampling: Sampling::HalfPixel,
            pad_value: 0.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }

    /// A 2×2 image whose R channel is [[0, 100], [200, 40]], G = R + 1, B = R + 2.
    fn img2x2() -> Vec<u8> {
        [0u8, 100, 200, 40]
            .iter()
            .flat_map(|&r| [r, r + 1, r + 2])
            .collect()
    }

    #[test]
    fn upscale_2x2_to_4x4_matches_hand_computed_inter_linear() {
        // Source coordinate per destination index for 2 → 4: (d + 0.5)·0.5 − 0.5 =
        // −0.25 (→ 0), 0.25, 0.75, 1.25 (→ clamped to 1). So taps/weights per axis are
        // (0,0,0) (0,1,.25) (0,1,.75) (1,1,0).
        // Row 0 (y taps 0/0): 0, 25, 75, 100.
        // Row 1 (fy = .25): top row 0,25,75,100 ; bottom row (200,40): 200, 160, 80, 40
        //   → 0·.75+200·.25 = 50, 25·.75+160·.25 = 58.75, 75·.75+80·.25 = 76.25, 100·.75+40·.25 = 85
        // Row 2 (fy = .75): 150, 126.25, 78.75, 55.   Row 3: 200, 160, 80, 40.
        let expected_r = [
            0.0, 25.0, 75.0, 100.0, 50.0, 58.75, 76.25, 85.0, 150.0, 126.25, 78.75, 55.0, 200.0,
            160.0, 80.0, 40.0,
        ];
        let s = spec(4, 4, Layout::Nchw, ResizeMode::Stretch);
        let (t, tr) = preprocess(&img2x2(), 2, 2, &s).unwrap();
        assert_eq!(t.shape, vec![1, 3, 4, 4]);
        for (i, e) in expected_r.iter().enumerate() {
            assert!((t.data[i] - e).abs() < 1e-4, "R[{i}] {} != {e}", t.data[i]);
            assert!((t.data[16 + i] - (e + 1.0)).abs() < 1e-4, "G[{i}]");
            assert!((t.data[32 + i] - (e + 2.0)).abs() < 1e-4, "B[{i}]");
        }
        assert_eq!(
            (tr.scale_x, tr.scale_y, tr.pad_x, tr.pad_y),
            (2.0, 2.0, 0.0, 0.0)
        );

        // Same in NHWC, BGR, normalised (p − 127.5)/127.5 per channel: pixel (1, 1) is
        // R 58.75 G 59.75 B 60.75 → channels (B, G, R).
        let mut s = spec(4, 4, Layout::Nhwc, ResizeMode::Stretch);
        s.colour = ColourOrder::Bgr;
        s.mean = [127.5; 3];
        s.std = [127.5; 3];
        let (t, _) = preprocess(&img2x2(), 2, 2, &s).unwrap();
        let px = &t.data[(4 + 1) * 3..(4 + 1) * 3 + 3];
        for (got, raw) in px.iter().zip([60.75f32, 59.75, 58.75]) {
            assert!((got - (raw - 127.5) / 127.5).abs() < 1e-5, "{px:?}");
        }
    }

    #[test]
    fn downscale_4x1_to_2x1_averages_pairs() {
        // 4 → 2: source x = (d + 0.5)·2 − 0.5 = 0.5, 2.5 → mean of pixels (0,1) and (2,3).
        let rgb: Vec<u8> = [10u8, 30, 100, 200]
            .iter()
            .flat_map(|&v| [v, v, v])
            .collect();
        let (t, _) =
            preprocess(&rgb, 4, 1, &spec(2, 1, Layout::Nchw, ResizeMode::Stretch)).unwrap();
        assert_eq!(&t.data[0..2], &[20.0, 150.0]);
    }

    #[test]
    fn letterbox_bottom_right_and_centre_geometry() {
        // A 4×2 image into 8×8: scale = min(8/4, 8/2) = 2 → 8×4 content, 4 rows of padding.
        let rgb = vec![50u8; 4 * 2 * 3];
        let mut s = spec(8, 8, Layout::Nchw, ResizeMode::Letterbox);
        s.pad_value = 114.0;
        s.mean = [14.0; 3];
        s.std = [2.0; 3];
        let (t, tr) = preprocess(&rgb, 4, 2, &s).unwrap();
        let content = (50.0 - 14.0) / 2.0;
        let pad = (114.0 - 14.0) / 2.0;
        for c in 0..3 {
            for y in 0..8 {
                for x in 0..8 {
                    let v = t.data[c * 64 + y * 8 + x];
                    assert_eq!(v, if y < 4 { content } else { pad }, "c{c} y{y} x{x}");
                }
            }
        }
        assert_eq!(
            (tr.scale_x, tr.scale_y, tr.pad_x, tr.pad_y),
            (2.0, 2.0, 0.0, 0.0)
        );

        s.pad = PadPosition::Centre;
        let (t, tr) = preprocess(&rgb, 4, 2, &s).unwrap();
        for y in 0..8 {
            let v = t.data[y * 8 + 3];
            assert_eq!(v, if (2..6).contains(&y) { content } else { pad }, "y{y}");
        }
        assert_eq!((tr.pad_x, tr.pad_y), (0.0, 2.0));
        // The model box covering the content maps to the whole image.
        let b = tr.to_image(&BBox::new(0.0, 0.25, 1.0, 0.75));
        assert_eq!(b, BBox::new(0.0, 0.0, 4.0, 2.0));
        // Boxes reaching into the padding are clamped to the image.
        let b = tr.to_image(&BBox::new(-0.1, 0.0, 1.2, 1.0));
        assert_eq!(b, BBox::new(0.0, 0.0, 4.0, 2.0));
    }

    #[test]
    fn box_round_trip_through_the_transform() {
        let rgb = vec![0u8; 640 * 480 * 3];
        for (resize, pad) in [
            (ResizeMode::Stretch, PadPosition::BottomRight),
            (ResizeMode::Letterbox, PadPosition::BottomRight),
            (ResizeMode::Letterbox, PadPosition::Centre),
        ] {
            let mut s = spec(416, 416, Layout::Nchw, resize);
            s.pad = pad;
            let (_, tr) = preprocess(&rgb, 640, 480, &s).unwrap();
            let b = BBox::new(100.0, 50.0, 300.5, 479.0);
            let back = tr.to_image(&tr.to_model(&b));
            for (g, e) in [
                (back.x1, b.x1),
                (back.y1, b.y1),
                (back.x2, b.x2),
                (back.y2, b.y2),
            ] {
                assert!(
                    (g - e).abs() < 1e-3,
                    "{resize:?} {pad:?}: {back:?} vs {b:?}"
                );
            }
        }
        // 640×480 letterboxed into 416×416, centred: 416×312, 52 rows of padding on top.
        let mut s = spec(416, 416, Layout::Nchw, ResizeMode::Letterbox);
        s.pad = PadPosition::Centre;
        let (_, tr) = preprocess(&rgb, 640, 480, &s).unwrap();
        assert_eq!((tr.pad_x, tr.pad_y), (0.0, 52.0));
        assert!((tr.scale_x - 0.65).abs() < 1e-6 && (tr.scale_y - 0.65).abs() < 1e-6);
    }

    #[test]
    fn checks_buffer_length_and_reuses_the_output() {
        let s = spec(4, 4, Layout::Nhwc, ResizeMode::Stretch);
        assert!(matches!(
            preprocess(&[0u8; 11], 2, 2, &s),
            Err(PreprocessError::BadLength {
                expected: 12,
                got: 11,
                ..
            })
        ));
        assert!(matches!(
            preprocess(&[], 0, 2, &s),
            Err(PreprocessError::EmptyImage { .. })
        ));
        let mut out = Tensor::zeros(vec![1, 4, 4, 3]);
        let ptr = out.data.as_ptr();
        preprocess_into(&img2x2(), 2, 2, &s, &mut out).unwrap();
        assert_eq!(
            out.data.as_ptr(),
            ptr,
            "reallocated a tensor of the right shape"
        );
        assert_eq!(out.data[0], 0.0);
        assert_eq!(out.data[(4 * 3 + 3) * 3], 40.0);
    }

    #[test]
    fn asymmetric_sampling_matches_tf1_resize_bilinear() {
        // TF1 resize_bilinear 2 → 4: s = d·0.5 → 0, 0.5, 1, 1.5 (clamped to the last pixel).
        let mut s = spec(4, 4, Layout::Nchw, ResizeMode::Stretch);
        s.sampling = Sampling::Asymmetric;
        let (t, _) = preprocess(&img2x2(), 2, 2, &s).unwrap();
        assert_eq!(&t.data[0..4], &[0.0, 50.0, 100.0, 100.0]);
        // Row 1 samples y = 0.5: halfway between rows [0, 100] and [200, 40].
        assert_eq!(&t.data[4..8], &[100.0, 85.0, 70.0, 70.0]);
    }
}
