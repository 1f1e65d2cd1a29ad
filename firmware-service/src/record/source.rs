//! A recording as a frame source (`mcap://FILE`, `adasd replay`): frames in recorded time
//! order, with their recorded capture times, optionally limited to a time window.

use super::{RecordedFrame, Recording};
use crate::source::{Frame, FrameError, FrameSource};

/// `[from, to]` in seconds of data time (inclusive).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    pub from_s: Option<f64>,
    pub to_s: Option<f64>,
}

impl Window {
    pub fn contains(&self, t_ns: u64) -> bool {
        let t = t_ns as f64 / 1e9;
        self.from_s.is_none_or(|f| t >= f) && self.to_s.is_none_or(|to| t <= to)
    }
}

pub struct RecordingSource {
    frames: std::vec::IntoIter<RecordedFrame>,
    total: usize,
    origin: String,
    /// Decode JPEGs (off for object-list replays, which take detections from the recording).
    decode: bool,
    last_jpeg: Option<Vec<u8>>,
}

impl RecordingSource {
    pub fn new(recording: Recording, window: Window, decode: bool) -> Self {
        let frames: Vec<RecordedFrame> = recording
            .frames
            .into_iter()
            .filter(|f| window.contains(f.t_ns) && (f.jpeg.is_some() || !decode))
            .collect();
        Self {
            total: frames.len(),
            frames: frames.into_iter(),
            origin: recording.path.display().to_string(),
            decode,
            last_jpeg: None,
        }
    }
}

impl FrameSource for RecordingSource {
    fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        let f = self.frames.next()?;
        let origin = format!("{}@{:.3}s", self.origin, f.t_ns as f64 / 1e9);
        self.last_jpeg = f.jpeg;
        if !self.decode {
            return Some(Ok(Frame {
                seq: f.seq,
                t_capture_ns: f.t_ns,
                image: image::RgbImage::new(0, 0),
                origin,
            }));
        }
        let decoded = self
            .last_jpeg
            .as_deref()
            .map(|b| image::load_from_memory_with_format(b, image::ImageFormat::Jpeg));
        Some(match decoded {
            Some(Ok(img)) => Ok(Frame {
                seq: f.seq,
                t_capture_ns: f.t_ns,
                image: img.to_rgb8(),
                origin,
            }),
            Some(Err(e)) => Err(FrameError {
                seq: f.seq,
                t_capture_ns: f.t_ns,
                origin,
                message: format!("cannot decode the recorded JPEG: {e}"),
            }),
            None => Err(FrameError {
                seq: f.seq,
                t_capture_ns: f.t_ns,
                origin,
                message: "no camera image recorded at this time".into(),
            }),
        })
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.total)
    }

    fn last_jpeg(&self) -> Option<&[u8]> {
        self.last_jpeg.as_deref()
    }
}
