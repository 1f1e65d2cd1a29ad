//! `dir://` and `file://`: still images decoded one at a time.

use super::{Frame, FrameError, FrameSource, SourceError, Timing};
use std::path::{Path, PathBuf};

const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

pub struct ImageSequence {
    files: Vec<PathBuf>,
    times_ns: Vec<u64>,
    next: usize,
    /// The last frame's file bytes when it is a JPEG (recorded as they are).
    last_jpeg: Option<Vec<u8>>,
}

impl ImageSequence {
    /// All JPEG/PNG files of a folder, in file-name order.
    pub fn from_dir(dir: &Path, timing: Timing) -> Result<Self, SourceError> {
        Self::from_files(image_files(dir)?, timing)
    }

    /// One image (`file://`): it must be a file, or every frame would be lost one by one.
    pub fn from_file(path: &Path, timing: Timing) -> Result<Self, SourceError> {
        let refuse = |message: String| SourceError::Open {
            path: path.to_path_buf(),
            message,
        };
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Err(refuse(format!(
                "is a folder; a folder of images is `dir://{}`",
                path.display()
            ))),
            Ok(m) if !m.is_file() => Err(refuse("is not a regular file".into())),
            Ok(_) => Self::from_files(vec![path.to_path_buf()], timing),
            Err(e) => Err(refuse(format!(
                "cannot open ({e}); check [source] uri (a relative path is resolved against \
                 the config file's folder)"
            ))),
        }
    }

    pub fn from_files(files: Vec<PathBuf>, timing: Timing) -> Result<Self, SourceError> {
        let times_ns = match timing {
            Timing::FixedRate(fps) | Timing::FromSource { fallback_fps: fps } => {
                super::fixed_rate_ns(files.len(), fps)
            }
            Timing::File(path) => read_timestamps(&path, files.len())?,
        };
        Ok(Self {
            files,
            times_ns,
            next: 0,
            last_jpeg: None,
        })
    }
}

/// The JPEG and PNG files of a folder, in file-name order; an error names the folder when it
/// cannot be listed or holds none.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let entries = std::fs::read_dir(dir).map_err(|e| SourceError::Open {
        path: dir.to_path_buf(),
        message: format!("cannot list folder: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && has_image_extension(p))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SourceError::Open {
            path: dir.to_path_buf(),
            message: "no .jpg/.jpeg/.png files in this folder".into(),
        });
    }
    Ok(files)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Whether a JPEG file is whole: an end-of-image marker (FF D9) follows the last start-of-scan
/// (FF DA). Inside entropy-coded data an FF byte is always followed by 00 or a restart marker,
/// so neither pair appears there; an EXIF thumbnail's own end marker comes before the main
/// image's scans and does not count.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(scan), Some(end)) => end > scan,
        _ => false,
    }
}

/// Reads one non-negative, strictly increasing time in seconds per frame.
pub(super) fn read_timestamps(path: &Path, frames: usize) -> Result<Vec<u64>, SourceError> {
    let text = std::fs::read_to_string(path).map_err(|e| SourceError::Open {
        path: path.to_path_buf(),
        message: format!("cannot read timestamps: {e}"),
    })?;
    parse_timestamps(&text, path, frames)
}

/// The timestamps file's text (one time in seconds per line, `#` comments) as nanoseconds, one
/// per frame; `path` is only used in error messages.
pub fn parse_timestamps(text: &str, path: &Path, frames: usize) -> Result<Vec<u64>, SourceError> {
    let error = |line: usize, message: String| SourceError::Timestamps {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut times = Vec::with_capacity(frames);
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let seconds: f64 = line
            .parse()
            .map_err(|_| error(i + 1, format!("`{line}` is not a number of seconds")))?;
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(error(i + 1, format!("{seconds} is not a time ≥ 0")));
        }
        let ns = (seconds * 1e9).round() as u64;
        if times.last().is_some_and(|&last| ns <= last) {
            return Err(error(i + 1, "times must increase strictly".into()));
        }
        times.push(ns);
    }
    if times.len() != frames {
        return Err(error(
            text.lines().count(),
            format!("{} times for {} frames", times.len(), frames),
        ));
    }
    Ok(times)
}

impl FrameSource for ImageSequence {
    fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        let index = self.next;
        let path = self.files.get(index)?;
        let t_capture_ns = self.times_ns.get(index).copied().unwrap_or_default();
        self.next += 1;
        let seq = index as u64;
        let origin = path.display().to_string();
        self.last_jpeg = None;
        let decoded = std::fs::read(path)
            .map_err(|e| format!("cannot read image: {e}"))
            .and_then(|bytes| {
                let format =
                    image::guess_format(&bytes).map_err(|e| format!("cannot decode image: {e}"))?;
                // The decoder fills a JPEG cut off mid-scan with grey and reports nothing, so
                // the lower part of the frame (where the nearest road users are) would be
                // searched for objects that cannot be there: a detector blind where it matters
                // most, with the status saying all is well. Such a frame is skipped as lost
                // instead, so CAN reports it (fault bit, mode unavailable) and the tracker
                // coasts, as for any other missing frame.
                if format == image::ImageFormat::Jpeg && !jpeg_is_complete(&bytes) {
                    return Err(format!(
                        "truncated JPEG ({} bytes, no end-of-image marker after the last scan): \
                         skipped as lost rather than decoded with a grey lower part",
                        bytes.len()
                    ));
                }
                let img = crate::decode::rgb(&bytes, format)
                    .map_err(|e| format!("cannot decode image: {e}"))?;
                if format == image::ImageFormat::Jpeg {
                    self.last_jpeg = Some(bytes);
                }
                Ok(img)
            });
        Some(match decoded {
            Ok(img) => Ok(Frame {
                seq,
                t_capture_ns,
                image: img,
                origin,
            }),
            Err(message) => Err(FrameError {
                seq,
                t_capture_ns,
                origin,
                message,
            }),
        })
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.files.len())
    }

    /// The first image's size from its header (a damaged first image says nothing; it is
    /// reported as a lost frame when it is read).
    fn frame_size(&self) -> Option<(u32, u32)> {
        let first = self.files.first()?;
        image::ImageReader::open(first)
            .ok()?
            .with_guessed_format()
            .ok()?
            .into_dimensions()
            .ok()
    }

    fn last_jpeg(&self) -> Option<&[u8]> {
        self.last_jpeg.as_deref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write_png(path: &Path, w: u32, h: u32) {
        image::RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn dir_source_is_sorted_timed_and_skips_bad_frames() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("b.png"), 4, 3);
        write_png(&dir.path().join("a.png"), 4, 3);
        std::fs::write(dir.path().join("c.jpg"), b"not a jpeg").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        let mut src = ImageSequence::from_dir(dir.path(), Timing::FixedRate(4.0)).unwrap();
        assert_eq!(src.len_hint(), Some(3));
        let a = src.next_frame().unwrap().unwrap();
        assert!(a.origin.ends_with("a.png"));
        assert_eq!((a.seq, a.t_capture_ns, a.image.width()), (0, 0, 4));
        let b = src.next_frame().unwrap().unwrap();
        assert_eq!(b.t_capture_ns, 250_000_000);
        let c = src.next_frame().unwrap().unwrap_err();
        assert_eq!((c.seq, c.t_capture_ns), (2, 500_000_000));
        assert!(c.to_string().contains("c.jpg"), "{c}");
        assert!(src.next_frame().is_none());
    }

    #[test]
    fn a_truncated_jpeg_is_a_lost_frame_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let mut jpeg = Vec::new();
        let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, 7]));
        image::DynamicImage::ImageRgb8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        std::fs::write(dir.path().join("a_whole.jpg"), &jpeg).unwrap();
        std::fs::write(dir.path().join("b_cut.jpg"), &jpeg[..jpeg.len() * 2 / 3]).unwrap();
        // Padding after the end marker (some cameras write it) is still a whole image.
        let mut padded = jpeg.clone();
        padded.extend_from_slice(&[0; 16]);
        std::fs::write(dir.path().join("c_padded.jpg"), &padded).unwrap();
        let mut src = ImageSequence::from_dir(dir.path(), Timing::FixedRate(10.0)).unwrap();
        assert_eq!(src.frame_size(), Some((64, 48)));
        assert_eq!(src.next_frame().unwrap().unwrap().image.width(), 64);
        let cut = src.next_frame().unwrap().unwrap_err();
        assert!(
            cut.to_string().contains("b_cut.jpg") && cut.message.contains("truncated JPEG"),
            "{cut}"
        );
        assert!(src.last_jpeg().is_none());
        assert_eq!(src.next_frame().unwrap().unwrap().image.height(), 48);
    }

    #[test]
    fn file_uri_must_name_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = super::super::open(
            &format!("file://{}", dir.path().display()),
            Timing::FixedRate(10.0),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("is a folder") && err.contains("dir://"),
            "{err}"
        );
        let missing = dir.path().join("missing.jpg");
        let err = super::super::open(
            &format!("file://{}", missing.display()),
            Timing::FixedRate(10.0),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("missing.jpg") && err.contains("cannot open"),
            "{err}"
        );
    }

    #[test]
    fn timestamps_file_is_validated() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), 2, 2);
        write_png(&dir.path().join("b.png"), 2, 2);
        let ts = dir.path().join("t.txt");
        std::fs::write(&ts, "# capture times\n0.5\n0.6\n").unwrap();
        let mut src = ImageSequence::from_dir(dir.path(), Timing::File(ts.clone())).unwrap();
        assert_eq!(src.next_frame().unwrap().unwrap().t_capture_ns, 500_000_000);
        std::fs::write(&ts, "0.5\n0.4\n").unwrap();
        let err = ImageSequence::from_dir(dir.path(), Timing::File(ts.clone()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("line 2") && err.contains("increase"), "{err}");
        std::fs::write(&ts, "0.5\n").unwrap();
        let err = ImageSequence::from_dir(dir.path(), Timing::File(ts))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("1 times for 2 frames"), "{err}");
    }

    #[cfg(not(feature = "video"))]
    #[test]
    fn videos_without_the_video_feature_are_a_clear_error() {
        let err = super::super::open("file://drive.mp4", Timing::FixedRate(10.0))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`video` feature"), "{err}");
    }

    #[test]
    fn empty_dir_and_unknown_schemes_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = ImageSequence::from_dir(dir.path(), Timing::FixedRate(10.0))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no .jpg"), "{err}");
        let err = super::super::open("rtsp://cam", Timing::FixedRate(10.0))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown scheme"), "{err}");
    }
}
