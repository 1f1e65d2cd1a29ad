//! `adasd record import`: an image sequence or a video file (MP4/MOV with H.264, raw `.h264`,
//! decoded by adasd itself) plus a candump log become a recording with camera frames and CAN
//! input, ready to replay.

use adas_io::can::replay::CandumpReplay;
use adas_record::schema::FrameRecord;
use adas_record::writer::McapFile;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct ImportOptions {
    pub frames: Option<PathBuf>,
    pub video: Option<PathBuf>,
    pub can: Option<PathBuf>,
    pub fps: f64,
    /// Re-encode every frame at this JPEG quality (smaller files); `None`: JPEGs as they are.
    pub jpeg_quality: Option<u8>,
    pub max_frames: Option<usize>,
    pub out: PathBuf,
    pub metadata: BTreeMap<String, String>,
}

pub struct Imported {
    pub frames: usize,
    pub can_frames: usize,
    pub bytes: u64,
}

/// JPEG bytes of an image file: as they are when already JPEG (and no quality asked),
/// otherwise decoded and encoded.
fn jpeg_of(path: &Path, quality: Option<u8>) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let format =
        image::guess_format(&bytes).with_context(|| format!("{}: not an image", path.display()))?;
    if format == image::ImageFormat::Jpeg && quality.is_none() {
        return Ok(bytes);
    }
    let img = adas_io::decode::rgb(&bytes, format)
        .map_err(|e| anyhow::anyhow!("cannot decode {}: {e}", path.display()))?;
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out,
        quality.unwrap_or(90),
    ))
    .with_context(|| format!("cannot encode {}", path.display()))?;
    Ok(out)
}

/// One frame to write: capture time and JPEG bytes.
type ImportFrame = anyhow::Result<(u64, Vec<u8>)>;

/// The frames of an image folder at `fps`.
fn folder_frames(
    dir: &Path,
    fps: f64,
    quality: Option<u8>,
) -> anyhow::Result<Box<dyn Iterator<Item = ImportFrame>>> {
    let files = adas_io::source::image_files(dir)?;
    let period = 1e9 / fps;
    Ok(Box::new(files.into_iter().enumerate().map(
        move |(i, path)| {
            let t_ns = (i as f64 * period).round() as u64;
            Ok((t_ns, jpeg_of(&path, quality)?))
        },
    )))
}

/// The frames of a video file, decoded by adasd itself (`source::VideoFile`, no ffmpeg) and
/// resampled to `fps`: output frame `k` at `k / fps` is the latest decoded frame whose capture
/// time (the file's own frame times, first frame at 0) is at or before it; output stops at the
/// last frame's time. A raw `.h264` stream has no times: its frames are taken at `fps`, one
/// output frame each. Frames that cannot be decoded are skipped (the previous one is held) and
/// counted in a warning.
#[cfg(feature = "video")]
fn video_frames(
    video: &Path,
    fps: f64,
    quality: Option<u8>,
) -> anyhow::Result<Box<dyn Iterator<Item = ImportFrame>>> {
    use adas_io::source::{Timing, VideoFile};
    let source = VideoFile::open(video, Timing::FromSource { fallback_fps: fps })?;
    Ok(Box::new(Resampled {
        source,
        name: video.display().to_string(),
        period: 1e9 / fps,
        quality: quality.unwrap_or(90),
        tick: 0,
        held: None,
        ahead: None,
        ended: false,
        decoded: 0,
        skipped: 0,
    }))
}

#[cfg(feature = "video")]
/// A video's frames resampled to a fixed rate (see [`video_frames`]).
struct Resampled {
    source: adas_io::source::VideoFile,
    name: String,
    period: f64,
    quality: u8,
    tick: u64,
    /// The latest decoded frame at or before the current tick.
    held: Option<adas_io::source::Frame>,
    /// The next decoded frame, after the current tick.
    ahead: Option<adas_io::source::Frame>,
    ended: bool,
    decoded: usize,
    skipped: usize,
}

#[cfg(feature = "video")]
impl Iterator for Resampled {
    type Item = ImportFrame;

    fn next(&mut self) -> Option<ImportFrame> {
        loop {
            let tick_ns = (self.tick as f64 * self.period).round() as u64;
            if self.ahead.is_none() && !self.ended {
                match adas_io::source::FrameSource::next_frame(&mut self.source) {
                    Some(Ok(frame)) => {
                        self.decoded += 1;
                        self.ahead = Some(frame);
                    }
                    Some(Err(e)) => {
                        self.skipped += 1;
                        tracing::warn!("{e}");
                        continue;
                    }
                    None => {
                        self.ended = true;
                        self.report();
                        if self.decoded == 0 {
                            return Some(Err(anyhow::anyhow!(
                                "{}: no frame could be decoded",
                                self.name
                            )));
                        }
                    }
                }
            }
            if self
                .ahead
                .as_ref()
                .is_some_and(|f| f.t_capture_ns <= tick_ns)
            {
                self.held = self.ahead.take();
                continue;
            }
            let Some(held) = &self.held else {
                if self.ended {
                    return None;
                }
                // The first frame comes after this tick.
                self.tick += 1;
                continue;
            };
            if self.ended && self.ahead.is_none() && tick_ns > held.t_capture_ns {
                return None;
            }
            self.tick += 1;
            let mut jpeg = Vec::new();
            let encoded = held
                .image
                .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                    &mut jpeg,
                    self.quality,
                ))
                .with_context(|| format!("cannot encode {} as JPEG", held.origin));
            return Some(encoded.map(|()| (tick_ns, jpeg)));
        }
    }
}

#[cfg(feature = "video")]
impl Resampled {
    fn report(&self) {
        if self.skipped > 0 {
            tracing::warn!(
                "{}: {} of {} frames could not be decoded and were skipped",
                self.name,
                self.skipped,
                self.skipped + self.decoded
            );
        }
    }
}

#[cfg(not(feature = "video"))]
fn video_frames(
    video: &Path,
    _fps: f64,
    _quality: Option<u8>,
) -> anyhow::Result<Box<dyn Iterator<Item = ImportFrame>>> {
    anyhow::bail!(
        "{}: this adasd was built without the `video` feature (on by default); rebuild with it, \
         or extract the frames yourself and use --frames DIR",
        video.display()
    )
}

pub fn import(o: &ImportOptions) -> anyhow::Result<Imported> {
    if !(o.fps.is_finite() && o.fps > 0.0) {
        anyhow::bail!(
            "--fps {}: must be a positive number of frames per second",
            o.fps
        );
    }
    let frames = match (&o.frames, &o.video) {
        (Some(dir), None) => folder_frames(dir, o.fps, o.jpeg_quality)?,
        (None, Some(video)) => video_frames(video, o.fps, o.jpeg_quality)?,
        _ => anyhow::bail!("give exactly one of --frames DIR and --video FILE"),
    };
    let frames = frames.take(o.max_frames.unwrap_or(usize::MAX));
    // Streamed: a drive's log is read as the frames' times advance, never whole.
    let mut can = o
        .can
        .as_deref()
        .map(|path| CandumpReplay::open(path, 0))
        .transpose()?;
    let mut metadata = o.metadata.clone();
    metadata.insert("source".into(), "import".into());
    metadata.insert("import_fps".into(), o.fps.to_string());
    if let Some(d) = o.frames.as_ref().or(o.video.as_ref()) {
        metadata.insert("import_frames".into(), d.display().to_string());
    }
    if let Some(c) = &o.can {
        metadata.insert("import_can".into(), c.display().to_string());
    }
    let mut file = McapFile::create(&o.out, &metadata, 0)?;
    let mut written = 0usize;
    let mut can_frames = 0usize;
    let mut write = |t_ns: u64, jpeg: &[u8], last: bool| -> anyhow::Result<()> {
        // CAN frames up to this frame's time go with it; the rest with the last frame.
        let rx = can.as_mut().map_or_else(Vec::new, |log| {
            log.until(if last { u64::MAX } else { t_ns })
        });
        can_frames += rx.len();
        let messages = adas_record::schema::encode_frame(&FrameRecord {
            seq: written as u64,
            t_ns,
            jpeg: Some(jpeg),
            outcome: None,
            can_rx: &rx,
            can_tx: &[],
        })
        .with_context(|| format!("cannot encode frame {written}"))?;
        file.write_frame(&messages)?;
        written += 1;
        Ok(())
    };
    // One frame is held back: the last one takes the remaining CAN frames.
    let mut pending: Option<(u64, Vec<u8>)> = None;
    for frame in frames {
        if let Some((t_ns, jpeg)) = pending.replace(frame?) {
            write(t_ns, &jpeg, false)?;
        }
    }
    if let Some((t_ns, jpeg)) = pending {
        write(t_ns, &jpeg, true)?;
    }
    let out = file.finish()?;
    Ok(Imported {
        frames: written,
        can_frames,
        bytes: std::fs::metadata(&out).map_or(0, |m| m.len()),
    })
}

#[cfg(all(test, feature = "video"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use adas_record::reader::{FrameReader, Images};

    fn options(video: PathBuf, fps: f64, out: PathBuf) -> ImportOptions {
        ImportOptions {
            frames: None,
            video: Some(video),
            can: None,
            fps,
            jpeg_quality: None,
            max_frames: None,
            out,
            metadata: BTreeMap::new(),
        }
    }

    /// (t_ns, width, height) of every frame of a recording.
    fn frames_of(path: &Path) -> Vec<(u64, u32, u32)> {
        let mut r = FrameReader::open(path, Images::Keep).unwrap();
        std::iter::from_fn(|| r.next_frame())
            .map(|f| {
                let f = f.unwrap();
                let img = image::load_from_memory(f.jpeg.as_deref().unwrap()).unwrap();
                (f.t_ns, img.width(), img.height())
            })
            .collect()
    }

    #[test]
    fn a_video_is_decoded_in_process_and_resampled_to_the_requested_rate() {
        let video = Path::new(env!("ADAS_REPO_ROOT")).join("samples/udacity/solidWhiteRight.mp4");
        let dir = tempfile::tempdir().unwrap();
        // 221 frames at 25 fps (0 … 8.80 s) → at 10 fps the ticks 0, 0.1 … 8.8 s: 89 frames.
        let out = dir.path().join("ten.mcap");
        let imported = import(&options(video.clone(), 10.0, out.clone())).unwrap();
        assert_eq!(imported.frames, 89);
        let frames = frames_of(&out);
        assert_eq!(frames.len(), 89);
        for (k, &(t, w, h)) in frames.iter().enumerate() {
            assert_eq!((t, w, h), (k as u64 * 100_000_000, 960, 540));
        }
        // At the file's own rate every frame is taken once; --max-frames stops early.
        let out = dir.path().join("all.mcap");
        let mut o = options(video, 25.0, out.clone());
        o.max_frames = Some(30);
        assert_eq!(import(&o).unwrap().frames, 30);
        let times: Vec<u64> = frames_of(&out).iter().map(|f| f.0).collect();
        assert_eq!(times, (0..30).map(|k| k * 40_000_000).collect::<Vec<_>>());
    }

    #[test]
    fn videos_that_cannot_be_read_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.mp4");
        std::fs::write(&bad, b"not a video at all").unwrap();
        let err = import(&options(bad, 10.0, dir.path().join("x.mcap")))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("bad.mp4") && err.contains("not an MP4"),
            "{err}"
        );
    }
}
