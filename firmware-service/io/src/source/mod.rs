//! Frame sources, chosen by URI. Each yields frames with a capture time taken from the data
//! (file-given or fixed frame rate, a camera driver's buffer timestamp), never from the wall
//! clock, so runs replay exactly.

pub mod camera;
mod images;
pub mod recording;
#[cfg(all(feature = "v4l2", target_os = "linux"))]
mod v4l2;
#[cfg(feature = "video")]
mod video;
mod yuv;

pub use camera::{CameraOptions, PixelFormat};
pub use images::{image_files, parse_timestamps, ImageSequence};
#[cfg(all(feature = "v4l2", target_os = "linux"))]
pub use v4l2::V4l2Camera;
#[cfg(feature = "video")]
pub use video::{VideoFile, VideoKind};

use std::path::{Path, PathBuf};

/// One camera frame: packed 8-bit RGB plus where and when it came from.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Position in the source, from 0.
    pub seq: u64,
    /// Capture time, monotonic nanoseconds from the start of the source.
    pub t_capture_ns: u64,
    pub image: image::RgbImage,
    /// Human-readable origin (file path, device) for logs.
    pub origin: String,
}

/// A frame the source could not deliver; the pipeline skips it and counts it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("frame {seq} ({origin}): {message}")]
pub struct FrameError {
    pub seq: u64,
    pub t_capture_ns: u64,
    pub origin: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source `{uri}`: unknown scheme; use dir://PATH, file://IMAGE, file://VIDEO.mp4 (or .m4v, .mov, .h264), v4l2:///dev/videoN or mcap://RECORDING")]
    UnknownScheme { uri: String },
    #[error("source `{uri}`: {what} input is not available in this build yet")]
    NotYetAvailable { uri: String, what: &'static str },
    #[error("source `{uri}`: {message}")]
    Uri { uri: String, message: String },
    #[error("source {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("timestamps {path} line {line}: {message}")]
    Timestamps {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Where frames come from. `next_frame` returns `None` at the end of a finite source.
pub trait FrameSource {
    fn next_frame(&mut self) -> Option<Result<Frame, FrameError>>;
    /// Number of frames when known in advance (files), for progress reports.
    fn len_hint(&self) -> Option<usize>;

    /// The size of the frames to come (width, height) when the source can say it without
    /// decoding one: a folder's first image header, a video's container header, the size a
    /// camera was set to. `adasd config check` compares it with the calibration's.
    fn frame_size(&self) -> Option<(u32, u32)> {
        None
    }
    /// The device is gone and being reopened (cameras); reported as the CAMERA fault on CAN.
    fn disconnected(&self) -> bool {
        false
    }

    /// How long ago a frame stamped `t_capture_ns` was captured, for sources whose times are
    /// the system's monotonic clock (cameras: the driver's stamp). `None` for sources whose
    /// times are data times (files, recordings): their frames are as old as their delivery.
    fn capture_age(&self, _t_capture_ns: u64) -> Option<std::time::Duration> {
        None
    }

    /// The last frame's JPEG bytes when the source has them, so a recorder stores them as they
    /// are instead of encoding the image again.
    fn last_jpeg(&self) -> Option<&[u8]> {
        None
    }

    /// The last frame's detections as a recording holds them (object-list replays).
    fn take_recorded_detections(&mut self) -> Option<adas_record::schema::DetectionsMsg> {
        None
    }

    /// CAN frames a recording holds as received up to the last frame (replays take the ego
    /// input from them).
    fn take_recorded_can_rx(&mut self) -> Vec<(u64, adas_types::CanFrame)> {
        Vec::new()
    }

    /// Why the source ended early, when that is an error (a recording found out of order
    /// half-way): the run stops in order and then fails with it.
    fn take_error(&mut self) -> Option<anyhow::Error> {
        None
    }

    /// The parts of a recording that were damaged and skipped (complete once the source has
    /// ended): the run goes on past them, and the command reports them at its end.
    fn damage(&self) -> &[adas_record::reader::Damage] {
        &[]
    }
}

/// How capture times are assigned to frames of a file-based source.
#[derive(Debug, Clone)]
pub enum Timing {
    /// Frame `i` at `i / fps` seconds.
    FixedRate(f64),
    /// A file with one capture time in seconds per line (blank lines and `#` comments skipped).
    File(PathBuf),
    /// The times the file itself carries (an MP4's sample times, first frame at 0); sources
    /// without any (images, raw `.h264`) use a fixed rate of `fallback_fps`.
    FromSource { fallback_fps: f64 },
}

/// `i / fps` seconds for frames `0..frames`, in nanoseconds.
fn fixed_rate_ns(frames: usize, fps: f64) -> Vec<u64> {
    let period_ns = 1e9 / fps;
    (0..frames)
        .map(|i| (i as f64 * period_ns).round() as u64)
        .collect()
}

/// Extensions that `file://` opens as a video (MP4/MOV with H.264, raw H.264), not an image.
pub const VIDEO_EXTENSIONS: [&str; 5] = ["mp4", "m4v", "mov", "h264", "264"];

/// Whether `file://PATH` is a video file (by extension, any case).
pub fn is_video_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Opens a source from its URI (cameras with default [`CameraOptions`]).
pub fn open(uri: &str, timing: Timing) -> Result<Box<dyn FrameSource>, SourceError> {
    open_with(uri, timing, &CameraOptions::default())
}

/// Opens a source from its URI; `camera` applies to `v4l2://` (format, size, rate, reconnect).
pub fn open_with(
    uri: &str,
    timing: Timing,
    camera: &CameraOptions,
) -> Result<Box<dyn FrameSource>, SourceError> {
    if let Some(path) = uri.strip_prefix("dir://") {
        Ok(Box::new(ImageSequence::from_dir(Path::new(path), timing)?))
    } else if let Some(path) = uri.strip_prefix("video://") {
        open_video(uri, Path::new(path), timing)
    } else if let Some(path) = uri
        .strip_prefix("file://")
        .filter(|p| is_video_path(Path::new(p)))
    {
        open_video(uri, Path::new(path), timing)
    } else if let Some(path) = uri.strip_prefix("file://") {
        Ok(Box::new(ImageSequence::from_file(Path::new(path), timing)?))
    } else if uri.starts_with("v4l2://") {
        open_camera(uri, camera)
    } else if let Some(path) = uri.strip_prefix("mcap://") {
        let open = || {
            let reader = adas_record::reader::FrameReader::open(
                Path::new(path),
                adas_record::reader::Images::Keep,
            )?;
            reader.require_camera()?;
            Ok(reader)
        };
        let reader = open().map_err(|e: adas_record::ReadError| SourceError::Open {
            path: PathBuf::from(path),
            message: e.to_string(),
        })?;
        Ok(Box::new(crate::source::recording::RecordingSource::new(
            reader,
            crate::source::recording::Window::default(),
            true,
        )))
    } else {
        Err(SourceError::UnknownScheme { uri: uri.into() })
    }
}

#[cfg(feature = "video")]
fn open_video(
    _uri: &str,
    path: &Path,
    timing: Timing,
) -> Result<Box<dyn FrameSource>, SourceError> {
    Ok(Box::new(VideoFile::open(path, timing)?))
}

#[cfg(not(feature = "video"))]
fn open_video(
    uri: &str,
    _path: &Path,
    _timing: Timing,
) -> Result<Box<dyn FrameSource>, SourceError> {
    Err(SourceError::NotYetAvailable {
        uri: uri.into(),
        what: "video file (build adasd with the `video` feature, on by default)",
    })
}

#[cfg(all(feature = "v4l2", target_os = "linux"))]
fn open_camera(uri: &str, options: &CameraOptions) -> Result<Box<dyn FrameSource>, SourceError> {
    let path = camera::parse_uri(uri).map_err(|message| SourceError::Uri {
        uri: uri.into(),
        message,
    })?;
    Ok(Box::new(V4l2Camera::open(&path, options.clone())?))
}

#[cfg(not(all(feature = "v4l2", target_os = "linux")))]
fn open_camera(uri: &str, _options: &CameraOptions) -> Result<Box<dyn FrameSource>, SourceError> {
    camera::parse_uri(uri).map_err(|message| SourceError::Uri {
        uri: uri.into(),
        message,
    })?;
    Err(SourceError::NotYetAvailable {
        uri: uri.into(),
        what: "V4L2 camera (build adasd with the `v4l2` feature, on Linux)",
    })
}
