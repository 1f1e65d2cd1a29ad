//! A camera buffer to RGB, as the V4L2 source decodes it: YUYV/UYVY (BT.601), RGB24 with a row
//! stride, MJPEG. The header is the negotiated geometry (format, width, height, bytes per row);
//! the rest is the buffer.
#![no_main]

use adas_io::source::camera::PREFERENCE;
use adas_io::source::camera::{decode, Geometry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    // libfuzzer-sys aborts at any panic, even one `decode` contains (adas_io::decode says why
    // it must). The default hook lets those be handled; one that escapes `decode` still aborts,
    // as libfuzzer-sys treats a panic out of the target as a crash.
    init: drop(std::panic::take_hook()),
    |data: &[u8]| {
        let mut header = adas_fuzz::Header::new(data);
        let format = PREFERENCE[usize::from(header.u8()) % PREFERENCE.len()];
        // Up to 255×255: enough for every row/stride case, small enough for fast runs.
        let (width, height) = (u32::from(header.u8()), u32::from(header.u8()));
        let stride = header.u32() as usize;
        let g = Geometry {
            format,
            width,
            height,
            stride,
        };
        if let Ok(image) = decode(&g, header.rest()) {
            assert_eq!(image.dimensions(), (width, height));
        }
    }
);
