//! `adasd record import`: an image sequence (or a video, through ffmpeg) plus a candump log
//! become a recording with camera frames and CAN input, ready to replay.

use super::schema::FrameRecord;
use super::writer::McapFile;
use crate::can::replay::CandumpReplay;
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

fn image_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list the frames folder {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!("{}: no .jpg/.jpeg/.png files", dir.display());
    }
    Ok(files)
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
    let img = image::load_from_memory_with_format(&bytes, format)
        .with_context(|| format!("cannot decode {}", path.display()))?
        .to_rgb8();
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out,
        quality.unwrap_or(90),
    ))
    .with_context(|| format!("cannot encode {}", path.display()))?;
    Ok(out)
}

/// Frames of a video, extracted by ffmpeg into `dir` at `fps`.
fn extract_video(video: &Path, fps: f64, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-i"])
        .arg(video)
        .args(["-vf", &format!("fps={fps}"), "-q:v", "3"])
        .arg(dir.join("frame_%05d.jpg"))
        .status()
        .with_context(|| {
            format!(
                "cannot run ffmpeg for {} (install ffmpeg, or extract the frames yourself and use --frames DIR)",
                video.display()
            )
        })?;
    if !status.success() {
        anyhow::bail!("ffmpeg failed on {} ({status})", video.display());
    }
    image_files(dir)
}

pub fn import(o: &ImportOptions) -> anyhow::Result<Imported> {
    if !(o.fps.is_finite() && o.fps > 0.0) {
        anyhow::bail!(
            "--fps {}: must be a positive number of frames per second",
            o.fps
        );
    }
    let tmp;
    let mut files = match (&o.frames, &o.video) {
        (Some(dir), None) => image_files(dir)?,
        (None, Some(video)) => {
            tmp = std::env::temp_dir().join(format!("adasd-import-{}", std::process::id()));
            std::fs::create_dir_all(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let files = extract_video(video, o.fps, &tmp);
            if files.is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            files?
        }
        _ => anyhow::bail!("give exactly one of --frames DIR and --video FILE"),
    };
    if let Some(n) = o.max_frames {
        files.truncate(n);
    }
    let can = match &o.can {
        Some(path) => CandumpReplay::open(path, 0)?.until(u64::MAX),
        None => Vec::new(),
    };
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
    let period = 1e9 / o.fps;
    let mut next_can = 0usize;
    for (i, path) in files.iter().enumerate() {
        let t_ns = (i as f64 * period).round() as u64;
        let jpeg = jpeg_of(path, o.jpeg_quality)?;
        // CAN frames up to this frame's time go with it; the rest with the last frame.
        let end = if i + 1 == files.len() {
            can.len()
        } else {
            next_can + can[next_can..].partition_point(|(t, _)| *t <= t_ns)
        };
        let rx = &can[next_can..end];
        next_can = end;
        let messages = super::schema::encode_frame(&FrameRecord {
            seq: i as u64,
            t_ns,
            jpeg: Some(&jpeg),
            outcome: None,
            can_rx: rx,
            can_tx: &[],
        })
        .with_context(|| format!("cannot encode frame {i}"))?;
        file.write_frame(&messages)?;
    }
    let out = file.finish()?;
    if o.video.is_some() {
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("adasd-import-{}", std::process::id())),
        );
    }
    Ok(Imported {
        frames: files.len(),
        can_frames: can.len(),
        bytes: std::fs::metadata(&out).map_or(0, |m| m.len()),
    })
}
