//! Packed 4:2:2 YUV (YUYV, UYVY) to RGB, BT.601 limited ("video") range — what UVC webcams and
//! `vivid` deliver. Integer arithmetic, one pass, no allocation besides the output image.

/// Byte order of a packed 4:2:2 macropixel (two pixels in four bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packed422 {
    /// `Y0 U Y1 V` (V4L2 `YUYV`).
    Yuyv,
    /// `U Y0 V Y1` (V4L2 `UYVY`).
    Uyvy,
}

impl Packed422 {
    /// Offsets of (Y0, U, Y1, V) inside a macropixel.
    fn offsets(self) -> [usize; 4] {
        match self {
            Packed422::Yuyv => [0, 1, 2, 3],
            Packed422::Uyvy => [1, 0, 3, 2],
        }
    }
}

/// One BT.601 limited-range sample to RGB.
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clip = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clip(c + 409 * e),
        clip(c - 100 * d - 208 * e),
        clip(c + 516 * d),
    ]
}

/// Converts a packed 4:2:2 image with `stride` bytes per row into `out` (RGB, `width·height·3`
/// bytes). Errors name what is wrong with the buffer's geometry.
pub fn packed422_to_rgb(
    data: &[u8],
    width: u32,
    height: u32,
    stride: usize,
    order: Packed422,
    out: &mut [u8],
) -> Result<(), String> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 {
        return Err(format!("{w}×{h} is an empty image"));
    }
    if !w.is_multiple_of(2) {
        return Err(format!("width {w} is odd; 4:2:2 needs an even width"));
    }
    let row_bytes = w * 2;
    if stride < row_bytes {
        return Err(format!(
            "stride {stride} is less than {row_bytes} bytes for {w} pixels"
        ));
    }
    let needed = stride * h.saturating_sub(1) + row_bytes;
    if h > 0 && data.len() < needed {
        return Err(format!(
            "buffer holds {} bytes, {w}×{h} needs {needed}",
            data.len()
        ));
    }
    if out.len() != w * h * 3 {
        return Err(format!(
            "output holds {} bytes, needs {}",
            out.len(),
            w * h * 3
        ));
    }
    let [y0, u, y1, v] = order.offsets();
    for (row, out_row) in out.chunks_exact_mut(w * 3).enumerate() {
        let start = row * stride;
        let src = data.get(start..start + row_bytes).unwrap_or_default();
        for (m, px) in src.chunks_exact(4).zip(out_row.chunks_exact_mut(6)) {
            let (cu, cv) = (m[u], m[v]);
            px[..3].copy_from_slice(&yuv_to_rgb(m[y0], cu, cv));
            px[3..].copy_from_slice(&yuv_to_rgb(m[y1], cu, cv));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reference_colours_convert_within_one_step() {
        // BT.601 limited range: black, white, grey and the 100 % colour bars' red, green, blue.
        let cases = [
            ((16, 128, 128), [0, 0, 0]),
            ((235, 128, 128), [255, 255, 255]),
            ((126, 128, 128), [128, 128, 128]),
            ((81, 90, 240), [255, 0, 0]),
            ((145, 54, 34), [0, 255, 0]),
            ((41, 240, 110), [0, 0, 255]),
        ];
        for ((y, u, v), want) in cases {
            let got = yuv_to_rgb(y, u, v);
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (i32::from(*g) - w).abs() <= 1,
                    "{y} {u} {v}: {got:?} vs {want:?}"
                );
            }
        }
    }

    #[test]
    fn yuyv_and_uyvy_share_chroma_per_pixel_pair_and_honour_the_stride() {
        // 2×2 image, stride 6 (2 padding bytes per row): row 0 black|white, row 1 red|red.
        let yuyv = [
            16, 128, 235, 128, 0xEE, 0xEE, //
            81, 90, 81, 240, 0xEE, 0xEE,
        ];
        let mut out = vec![0; 12];
        packed422_to_rgb(&yuyv, 2, 2, 6, Packed422::Yuyv, &mut out).unwrap();
        assert_eq!(&out[..6], &[0, 0, 0, 255, 255, 255]);
        assert_eq!(&out[6..9], &out[9..12]);
        assert_eq!(&out[6..9], &[255, 0, 0]);
        let uyvy = [128, 16, 128, 235, 0, 0, 90, 81, 240, 81, 0, 0];
        let mut out2 = vec![0; 12];
        packed422_to_rgb(&uyvy, 2, 2, 6, Packed422::Uyvy, &mut out2).unwrap();
        assert_eq!(out, out2);
    }

    #[test]
    fn short_buffers_and_odd_widths_are_errors() {
        let mut out = vec![0; 12];
        let err = packed422_to_rgb(&[0; 7], 2, 2, 4, Packed422::Yuyv, &mut out).unwrap_err();
        assert!(err.contains("7 bytes"), "{err}");
        let mut out = vec![0; 9];
        let err = packed422_to_rgb(&[0; 12], 3, 1, 6, Packed422::Yuyv, &mut out).unwrap_err();
        assert!(err.contains("odd"), "{err}");
        let err = packed422_to_rgb(&[0; 12], 2, 1, 3, Packed422::Yuyv, &mut out).unwrap_err();
        assert!(err.contains("stride"), "{err}");
        // Found by fuzz/fuzz_targets/camera_frame.rs: a zero width panicked (chunks of 0 bytes).
        for (w, h) in [(0, 2), (2, 0), (0, 0)] {
            let err = packed422_to_rgb(&[0; 12], w, h, 4, Packed422::Uyvy, &mut []).unwrap_err();
            assert!(err.contains("empty image"), "{err}");
        }
    }
}
