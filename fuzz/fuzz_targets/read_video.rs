//! Any bytes as a video file, MP4 and raw H.264: opening must return Ok or Err and decoding the
//! first frames values or frame errors, never panic or hang.
#![no_main]

use adas_io::source::{FrameSource, Timing, VideoFile, VideoKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in [VideoKind::Mp4, VideoKind::AnnexB] {
        let opened = VideoFile::from_reader(
            "fuzz.mp4",
            std::io::Cursor::new(data.to_vec()),
            data.len() as u64,
            kind,
            Timing::FromSource { fallback_fps: 10.0 },
        );
        if let Ok(mut source) = opened {
            for _ in 0..8 {
                if source.next_frame().is_none() {
                    break;
                }
            }
        }
    }
});
