//! The pure half of the camera source: `v4l2://` URIs, the pixel formats we read, choosing a
//! format from what a device offers, driver timestamps onto the source's clock, and decoding a
//! buffer to RGB. The device I/O lives in `v4l2.rs`; everything here is testable without one.

use super::yuv::{packed422_to_rgb, Packed422};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// The device path of a `v4l2:///dev/videoN` URI (any absolute path: `/dev/v4l/by-id/…` links
/// survive re-plugging, `/dev/videoN` numbers may not).
pub fn parse_uri(uri: &str) -> Result<PathBuf, String> {
    let rest = uri
        .strip_prefix("v4l2://")
        .ok_or_else(|| format!("`{uri}` is not a v4l2:// URI"))?;
    if rest.is_empty() || !rest.starts_with('/') || rest.ends_with('/') {
        return Err(format!(
            "`{uri}`: give the device's absolute path, e.g. v4l2:///dev/video0 or v4l2:///dev/v4l/by-id/…"
        ));
    }
    Ok(PathBuf::from(rest))
}

/// Pixel formats the source converts to RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Packed 4:2:2 `Y0 U Y1 V`, BT.601 limited range.
    Yuyv,
    /// Packed 4:2:2 `U Y0 V Y1`.
    Uyvy,
    /// Packed 8-bit RGB.
    Rgb24,
    /// Motion JPEG (also accepted when a device calls it `JPEG`).
    Mjpeg,
}

/// Preference when the config names no format: uncompressed first (no decode cost, no
/// compression loss), MJPEG last.
pub const PREFERENCE: [PixelFormat; 4] = [
    PixelFormat::Yuyv,
    PixelFormat::Uyvy,
    PixelFormat::Rgb24,
    PixelFormat::Mjpeg,
];

impl PixelFormat {
    pub fn from_fourcc(fourcc: [u8; 4]) -> Option<PixelFormat> {
        match &fourcc {
            b"YUYV" => Some(PixelFormat::Yuyv),
            b"UYVY" => Some(PixelFormat::Uyvy),
            b"RGB3" => Some(PixelFormat::Rgb24),
            b"MJPG" | b"JPEG" => Some(PixelFormat::Mjpeg),
            _ => None,
        }
    }

    /// The fourcc we ask the driver for.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Uyvy => *b"UYVY",
            PixelFormat::Rgb24 => *b"RGB3",
            PixelFormat::Mjpeg => *b"MJPG",
        }
    }

    /// From the config's name (`yuyv`, `uyvy`, `rgb24`, `mjpeg`).
    pub fn from_name(name: &str) -> Option<PixelFormat> {
        PREFERENCE.into_iter().find(|f| f.name() == name)
    }

    /// The config's name (`[source] format = "…"`).
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Yuyv => "yuyv",
            PixelFormat::Uyvy => "uyvy",
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Mjpeg => "mjpeg",
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fourcc for messages (`YUYV`, or hex when not printable).
pub fn fourcc_str(fourcc: [u8; 4]) -> String {
    if fourcc.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        fourcc.iter().map(|&b| char::from(b)).collect()
    } else {
        format!("0x{:08x}", u32::from_le_bytes(fourcc))
    }
}

/// Frame sizes a device offers for one format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sizes {
    Discrete(Vec<(u32, u32)>),
    /// `min..=max` in steps (stepwise/continuous).
    Range {
        min: (u32, u32),
        max: (u32, u32),
        step: (u32, u32),
    },
}

impl Sizes {
    pub fn contains(&self, (w, h): (u32, u32)) -> bool {
        match self {
            Sizes::Discrete(list) => list.contains(&(w, h)),
            Sizes::Range { min, max, step } => {
                let fits = |v: u32, lo: u32, hi: u32, st: u32| {
                    (lo..=hi).contains(&v) && (v - lo).is_multiple_of(st.max(1))
                };
                fits(w, min.0, max.0, step.0) && fits(h, min.1, max.1, step.1)
            }
        }
    }

    /// The offered size nearest to `want` (by pixel count), for when `want` is not offered.
    pub fn nearest(&self, (w, h): (u32, u32)) -> Option<(u32, u32)> {
        let area = |(a, b): (u32, u32)| u64::from(a) * u64::from(b);
        match self {
            Sizes::Discrete(list) => list
                .iter()
                .copied()
                .min_by_key(|&s| area(s).abs_diff(area((w, h)))),
            Sizes::Range { min, max, step } => {
                let snap = |v: u32, lo: u32, hi: u32, st: u32| {
                    let v = v.clamp(lo, hi);
                    lo + (v - lo) / st.max(1) * st.max(1)
                };
                Some((snap(w, min.0, max.0, step.0), snap(h, min.1, max.1, step.1)))
            }
        }
    }
}

/// One format a device offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub fourcc: [u8; 4],
    pub description: String,
    /// `None` when the driver does not enumerate sizes.
    pub sizes: Option<Sizes>,
}

/// What to ask the driver for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub format: PixelFormat,
    /// The fourcc as the device spells it (`MJPG` or `JPEG`).
    pub fourcc: [u8; 4],
    /// `None`: keep the driver's current size.
    pub size: Option<(u32, u32)>,
}

/// Why no format can be used; the message lists what the device offers and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("format {wanted} was requested but the device offers {offered}; set [source] format to one of those (adasd reads yuyv, uyvy, rgb24, mjpeg) or remove it")]
    NotOffered {
        wanted: PixelFormat,
        offered: String,
    },
    #[error("the device offers {offered}, none of which adasd reads (yuyv, uyvy, rgb24, mjpeg); use another camera or camera mode")]
    NoneSupported { offered: String },
}

/// `YUYV (YUYV 4:2:2), MJPG (Motion-JPEG)` for messages.
pub fn describe(offered: &[Offered]) -> String {
    if offered.is_empty() {
        return "no capture formats".into();
    }
    offered
        .iter()
        .map(|o| format!("{} ({})", fourcc_str(o.fourcc), o.description))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Picks the format (and size) to request: the configured format if the device offers it, else
/// the first of [`PREFERENCE`] offering `want_size` exactly, else the first of [`PREFERENCE`]
/// offered at all. The size is `want_size` where offered, else the nearest offered one.
pub fn choose_format(
    offered: &[Offered],
    want_format: Option<PixelFormat>,
    want_size: Option<(u32, u32)>,
) -> Result<Choice, FormatError> {
    let usable: Vec<(PixelFormat, &Offered)> = offered
        .iter()
        .filter_map(|o| PixelFormat::from_fourcc(o.fourcc).map(|f| (f, o)))
        .collect();
    let rank = |f: PixelFormat| {
        PREFERENCE
            .iter()
            .position(|&p| p == f)
            .unwrap_or(usize::MAX)
    };
    let picked =
        match want_format {
            Some(wanted) => usable.iter().find(|(f, _)| *f == wanted).ok_or_else(|| {
                FormatError::NotOffered {
                    wanted,
                    offered: describe(offered),
                }
            })?,
            None => {
                let offers_size = |o: &Offered| match (want_size, &o.sizes) {
                    (Some(s), Some(sizes)) => sizes.contains(s),
                    _ => false,
                };
                usable
                    .iter()
                    .filter(|(_, o)| offers_size(o))
                    .min_by_key(|(f, _)| rank(*f))
                    .or_else(|| usable.iter().min_by_key(|(f, _)| rank(*f)))
                    .ok_or_else(|| FormatError::NoneSupported {
                        offered: describe(offered),
                    })?
            }
        };
    let (format, o) = *picked;
    let size = want_size.map(|s| match &o.sizes {
        Some(sizes) if !sizes.contains(s) => sizes.nearest(s).unwrap_or(s),
        _ => s,
    });
    Ok(Choice {
        format,
        fourcc: o.fourcc,
        size,
    })
}

/// Capture times on the source's clock: nanoseconds of `CLOCK_MONOTONIC` since the source was
/// opened. V4L2 drivers stamp buffers with that same clock (`V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC`),
/// so times stay comparable across reconnects; a buffer without a monotonic stamp gets the time
/// it was dequeued. Times are forced to increase strictly (the tracker needs it).
#[derive(Debug, Clone)]
pub struct CaptureClock {
    origin_ns: u64,
    last_ns: Option<u64>,
}

impl CaptureClock {
    pub fn new(origin_ns: u64) -> Self {
        Self {
            origin_ns,
            last_ns: None,
        }
    }

    /// A frame's capture time from the driver's stamp (`None`: not monotonic) and the monotonic
    /// time now.
    pub fn frame_time(&mut self, driver_ns: Option<u64>, now_ns: u64) -> u64 {
        let t = driver_ns.unwrap_or(now_ns).saturating_sub(self.origin_ns);
        let t = match self.last_ns {
            Some(last) if t <= last => last + 1,
            _ => t,
        };
        self.last_ns = Some(t);
        t
    }

    /// The time of a report without a frame (lost frame, device gone), on the same clock.
    pub fn report_time(&mut self, now_ns: u64) -> u64 {
        self.frame_time(None, now_ns)
    }

    /// How long before the monotonic time `now_ns` a frame stamped `t_ns` was captured.
    pub fn age_ns(&self, t_ns: u64, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.origin_ns).saturating_sub(t_ns)
    }
}

/// A `struct timeval` (seconds, microseconds) as nanoseconds; `None` when negative.
pub fn timeval_ns(sec: i64, usec: i64) -> Option<u64> {
    let sec = u64::try_from(sec).ok()?;
    let usec = u64::try_from(usec).ok()?;
    sec.checked_mul(1_000_000_000)?.checked_add(usec * 1000)
}

/// The negotiated geometry of the buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes per row (uncompressed formats).
    pub stride: usize,
}

/// One buffer's bytes to an RGB image.
pub fn decode(g: &Geometry, data: &[u8]) -> Result<image::RgbImage, String> {
    let rgb_len = g.width as usize * g.height as usize * 3;
    let packed = |order| -> Result<image::RgbImage, String> {
        let mut out = vec![0u8; rgb_len];
        packed422_to_rgb(data, g.width, g.height, g.stride, order, &mut out)?;
        image::RgbImage::from_raw(g.width, g.height, out).ok_or_else(|| "bad image size".into())
    };
    match g.format {
        PixelFormat::Yuyv => packed(Packed422::Yuyv),
        PixelFormat::Uyvy => packed(Packed422::Uyvy),
        PixelFormat::Rgb24 => {
            let row = g.width as usize * 3;
            if g.stride < row {
                return Err(format!("stride {} is less than {row}", g.stride));
            }
            let mut out = Vec::with_capacity(rgb_len);
            for r in 0..g.height as usize {
                let start = r * g.stride;
                let src = data.get(start..start + row).ok_or_else(|| {
                    format!(
                        "buffer holds {} bytes, too few for {}×{}",
                        data.len(),
                        g.width,
                        g.height
                    )
                })?;
                out.extend_from_slice(src);
            }
            image::RgbImage::from_raw(g.width, g.height, out).ok_or_else(|| "bad image size".into())
        }
        PixelFormat::Mjpeg => {
            use image::ImageDecoder;
            let cannot = |e| format!("cannot decode MJPEG frame ({} bytes): {e}", data.len());
            let jpeg = crate::decode::contained(|| {
                image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(data))
            })
            .map_err(cannot)?;
            // The size in the header before decoding: a corrupt frame may claim any size, and
            // decoding an 8208×21776 one from 1 KB took 19 s (found by fuzz target camera_frame).
            let (width, height) = jpeg.dimensions();
            if (width, height) != (g.width, g.height) {
                return Err(format!(
                    "MJPEG frame is {width}×{height}, the negotiated size {}×{}",
                    g.width, g.height
                ));
            }
            Ok(
                crate::decode::contained(|| image::DynamicImage::from_decoder(jpeg))
                    .map_err(cannot)?
                    .to_rgb8(),
            )
        }
    }
}

/// What the config asks of a camera (`[source]` keys; docs/CAMERA.md).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraOptions {
    /// `None`: the first of [`PREFERENCE`] the device offers.
    pub format: Option<PixelFormat>,
    /// `None`: the driver's current size.
    pub size: Option<(u32, u32)>,
    /// Frame rate to request; `None`: the driver's current rate.
    pub fps: Option<f64>,
    /// No frame for this long: report a lost frame and restart the capture.
    pub timeout_ms: u64,
    /// Retry a vanished device this often (one lost-frame report per try).
    pub reconnect_ms: u64,
}

impl Default for CameraOptions {
    fn default() -> Self {
        Self {
            format: None,
            size: None,
            fps: None,
            timeout_ms: 1000,
            reconnect_ms: 500,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn offered(fourcc: &[u8; 4], sizes: Option<Sizes>) -> Offered {
        Offered {
            fourcc: *fourcc,
            description: String::from_utf8_lossy(fourcc).into_owned(),
            sizes,
        }
    }

    #[test]
    fn uris_name_an_absolute_device_path() {
        assert_eq!(
            parse_uri("v4l2:///dev/video0").unwrap(),
            PathBuf::from("/dev/video0")
        );
        assert_eq!(
            parse_uri("v4l2:///dev/v4l/by-id/usb-cam-video-index0").unwrap(),
            PathBuf::from("/dev/v4l/by-id/usb-cam-video-index0")
        );
        for bad in [
            "v4l2://",
            "v4l2://video0",
            "v4l2:///dev/",
            "file:///dev/video0",
        ] {
            assert!(parse_uri(bad).is_err(), "{bad}");
        }
        assert!(parse_uri("v4l2://video0")
            .unwrap_err()
            .contains("v4l2:///dev/video0"));
    }

    #[test]
    fn format_choice_prefers_uncompressed_at_the_wanted_size() {
        let vga = Sizes::Discrete(vec![(640, 480), (1280, 720)]);
        let offers = [
            offered(
                b"MJPG",
                Some(Sizes::Discrete(vec![(640, 480), (1920, 1080)])),
            ),
            offered(b"GREY", None),
            offered(b"YUYV", Some(vga.clone())),
        ];
        let c = choose_format(&offers, None, Some((640, 480))).unwrap();
        assert_eq!((c.format, c.size), (PixelFormat::Yuyv, Some((640, 480))));
        // Only MJPEG offers 1920×1080: it wins over the preferred YUYV.
        let c = choose_format(&offers, None, Some((1920, 1080))).unwrap();
        assert_eq!(c.format, PixelFormat::Mjpeg);
        // A size nobody offers: preferred format, nearest size.
        let c = choose_format(&offers, None, Some((1200, 700))).unwrap();
        assert_eq!((c.format, c.size), (PixelFormat::Yuyv, Some((1280, 720))));
        // The config's format wins when offered.
        let c = choose_format(&offers, Some(PixelFormat::Mjpeg), Some((640, 480))).unwrap();
        assert_eq!((c.format, c.fourcc), (PixelFormat::Mjpeg, *b"MJPG"));
        let c = choose_format(&offers, None, None).unwrap();
        assert_eq!((c.format, c.size), (PixelFormat::Yuyv, None));
    }

    #[test]
    fn format_errors_list_what_the_device_offers() {
        let offers = [offered(b"GREY", None), offered(b"Y16 ", None)];
        let err = choose_format(&offers, None, None).unwrap_err().to_string();
        assert!(
            err.contains("GREY (GREY), Y16  (Y16 )") && err.contains("none of which"),
            "{err}"
        );
        let offers = [offered(b"YUYV", None)];
        let err = choose_format(&offers, Some(PixelFormat::Mjpeg), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mjpeg was requested") && err.contains("YUYV"),
            "{err}"
        );
        let err = choose_format(&[], None, None).unwrap_err().to_string();
        assert!(err.contains("no capture formats"), "{err}");
        assert_eq!(fourcc_str([0, 1, 2, 3]), "0x03020100");
        assert_eq!(PixelFormat::from_fourcc(*b"JPEG"), Some(PixelFormat::Mjpeg));
        assert_eq!(PixelFormat::from_name("uyvy"), Some(PixelFormat::Uyvy));
        assert_eq!(PixelFormat::from_name("h264"), None);
    }

    #[test]
    fn stepwise_sizes_snap_to_the_grid() {
        let s = Sizes::Range {
            min: (16, 16),
            max: (1920, 1080),
            step: (16, 8),
        };
        assert!(s.contains((640, 480)));
        assert!(!s.contains((641, 480)));
        assert_eq!(s.nearest((650, 2000)), Some((640, 1080)));
    }

    #[test]
    fn driver_timestamps_become_strictly_increasing_source_times() {
        assert_eq!(timeval_ns(12, 345_678), Some(12_345_678_000));
        assert_eq!(timeval_ns(-1, 0), None);
        let mut clock = CaptureClock::new(10_000_000_000);
        assert_eq!(clock.frame_time(timeval_ns(10, 500_000), 0), 500_000_000);
        // A repeated stamp still moves on; a frame without a monotonic stamp takes "now".
        assert_eq!(clock.frame_time(timeval_ns(10, 500_000), 0), 500_000_001);
        assert_eq!(clock.frame_time(None, 11_000_000_000), 1_000_000_000);
        assert_eq!(clock.report_time(10_000_000_000), 1_000_000_001);
        // Stamps from before the source opened clamp to its start.
        let mut clock = CaptureClock::new(10_000_000_000);
        assert_eq!(clock.frame_time(Some(5), 0), 0);
    }

    #[test]
    fn a_frame_s_age_is_measured_on_the_driver_s_clock() {
        let mut clock = CaptureClock::new(10_000_000_000);
        let t = clock.frame_time(timeval_ns(10, 500_000), 0);
        assert_eq!(clock.age_ns(t, 10_540_000_000), 40_000_000);
        // A clock read before the stamp (never on one clock) is no age, not a wrap-around.
        assert_eq!(clock.age_ns(t, 10_100_000_000), 0);
    }

    #[test]
    fn buffers_decode_to_rgb() {
        let g = Geometry {
            format: PixelFormat::Rgb24,
            width: 2,
            height: 1,
            stride: 8,
        };
        let img = decode(&g, &[1, 2, 3, 4, 5, 6, 0, 0]).unwrap();
        assert_eq!(img.as_raw(), &[1, 2, 3, 4, 5, 6]);
        assert!(decode(&g, &[1, 2, 3]).unwrap_err().contains("3 bytes"));
        let g = Geometry {
            format: PixelFormat::Yuyv,
            width: 2,
            height: 1,
            stride: 4,
        };
        assert_eq!(
            decode(&g, &[235, 128, 16, 128]).unwrap().as_raw(),
            &[255, 255, 255, 0, 0, 0]
        );
        // MJPEG: a real JPEG of the negotiated size decodes; garbage and wrong sizes are errors.
        let src = image::RgbImage::from_pixel(16, 8, image::Rgb([200, 40, 40]));
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(src)
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let g = Geometry {
            format: PixelFormat::Mjpeg,
            width: 16,
            height: 8,
            stride: 0,
        };
        let img = decode(&g, &jpeg).unwrap();
        let p = img.get_pixel(8, 4).0;
        assert!(p[0] > 180 && p[1] < 70 && p[2] < 70, "{p:?}");
        assert!(decode(&g, b"not a jpeg").unwrap_err().contains("MJPEG"));
        let g = Geometry { width: 32, ..g };
        assert!(decode(&g, &jpeg).unwrap_err().contains("16×8"));
        // A corrupt header claiming 65535×65535 is refused before any decoding (it used to be
        // decoded, or refused for its memory, first).
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut huge = jpeg.clone();
        huge[sof + 5..sof + 9].copy_from_slice(&[0xFF; 4]);
        let err = decode(&g, &huge).unwrap_err();
        assert!(
            err.contains("65535×65535, the negotiated size 32×8"),
            "{err}"
        );
    }
}
