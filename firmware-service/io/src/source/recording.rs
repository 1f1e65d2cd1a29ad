//! A recording as a frame source (`mcap://FILE`, `adasd replay`): frames in recorded time
//! order, with their recorded capture times, optionally limited to a time window.

use crate::source::{Frame, FrameError, FrameSource};
use adas_record::reader::{summary_counts, FrameReader};
use adas_record::schema::{self, DetectionsMsg};
use adas_record::{ReadError, RecordedFrame};
use adas_types::CanFrame;
use std::fs::File;
use std::io::BufReader;

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

/// Frames of a recording, streamed from the file (constant memory, however long the drive).
pub struct RecordingSource {
    reader: FrameReader<BufReader<File>>,
    window: Window,
    /// Decode JPEGs (off for object-list replays, which take detections from the recording).
    decode: bool,
    last_jpeg: Option<Vec<u8>>,
    detections: Option<DetectionsMsg>,
    /// CAN frames received up to the last frame, since the one before (the recorded input).
    can_rx: Vec<(u64, CanFrame)>,
    error: Option<ReadError>,
    /// Frames in the file, from its summary (complete files, no window: progress bars).
    total: Option<usize>,
}

impl RecordingSource {
    /// `reader` after its checks (camera or decisions present); frames in `window` only.
    /// `decode`: frames carry the decoded image (replay with the detector); otherwise an empty
    /// image and the recorded detections ([`FrameSource::take_recorded_detections`]).
    pub fn new(reader: FrameReader<BufReader<File>>, window: Window, decode: bool) -> Self {
        let total = (window == Window::default())
            .then(|| summary_counts(reader.path()))
            .flatten()
            .map(|counts| {
                let n = |topic| counts.get(topic).copied().unwrap_or(0);
                n(schema::CAMERA).max(n(schema::DECISION))
            })
            .and_then(|n| usize::try_from(n).ok());
        Self {
            total,
            reader,
            window,
            decode,
            last_jpeg: None,
            detections: None,
            can_rx: Vec::new(),
            error: None,
        }
    }

    /// The next recorded frame in the window (CAN input of skipped frames is kept for it).
    fn next_recorded(&mut self) -> Option<RecordedFrame> {
        loop {
            let f = match self.reader.next_frame()? {
                Ok(f) => f,
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            };
            let (rx, _tx) = self.reader.take_can_until(f.t_ns);
            self.can_rx.extend(rx);
            if self.window.to_s.is_some_and(|to| f.t_ns as f64 / 1e9 > to) {
                return None;
            }
            if self.window.contains(f.t_ns) && (f.jpeg.is_some() || !self.decode) {
                return Some(f);
            }
        }
    }
}

impl FrameSource for RecordingSource {
    fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        let f = self.next_recorded()?;
        let origin = format!(
            "{}@{:.3}s",
            self.reader.path().display(),
            f.t_ns as f64 / 1e9
        );
        self.last_jpeg = f.jpeg;
        self.detections = f.outcome.map(|o| o.detections);
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
            .map(|b| crate::decode::rgb(b, image::ImageFormat::Jpeg));
        Some(match decoded {
            Some(Ok(img)) => Ok(Frame {
                seq: f.seq,
                t_capture_ns: f.t_ns,
                image: img,
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
        self.total
    }

    fn last_jpeg(&self) -> Option<&[u8]> {
        self.last_jpeg.as_deref()
    }

    fn take_recorded_detections(&mut self) -> Option<DetectionsMsg> {
        self.detections.take()
    }

    fn take_recorded_can_rx(&mut self) -> Vec<(u64, CanFrame)> {
        std::mem::take(&mut self.can_rx)
    }

    fn take_error(&mut self) -> Option<anyhow::Error> {
        self.error.take().map(anyhow::Error::from)
    }

    fn damage(&self) -> &[adas_record::reader::Damage] {
        self.reader.damage()
    }
}
