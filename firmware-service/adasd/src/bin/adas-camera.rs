//! `adas-camera`: the daemon's camera source alone — open, negotiate, stream, reconnect — without
//! detector or CAN. For bench and VM tests of a V4L2 device and for checking a camera on the
//! vehicle before running the daemon.
//!
//! ```text
//! adas-camera v4l2:///dev/video0 [--seconds S] [--frames N] [--format yuyv|uyvy|rgb24|mjpeg]
//!             [--size WxH] [--fps F] [--save last.png]
//! ```
//! Prints one line per frame (`frame SEQ T_NS WxH`) or lost frame (`lost SEQ T_NS MESSAGE`) on
//! stdout, and a summary at the end. SIGTERM/SIGINT end it; exit status 1 when no frame came.

use adas_io::source::{CameraOptions, FrameSource, PixelFormat, Timing};
use anyhow::Context;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: adas-camera v4l2:///dev/videoN [--seconds S] [--frames N] \
[--format yuyv|uyvy|rgb24|mjpeg] [--size WxH] [--fps F] [--save PNG]";

fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ADASD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Args {
        uri,
        seconds,
        max_frames,
        save,
        options,
    } = parse_args(std::env::args().skip(1).collect())?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;

    let mut source: Box<dyn FrameSource> =
        adas_io::source::open_with(&uri, Timing::FromSource { fallback_fps: 10.0 }, &options)?;
    let started = Instant::now();
    let deadline = seconds.map(|s| started + Duration::from_secs_f64(s));
    let (mut frames, mut lost) = (0u64, 0u64);
    let mut last = None;
    let mut out = std::io::stdout().lock();
    while !stop.load(Ordering::SeqCst)
        && deadline.is_none_or(|d| Instant::now() < d)
        && max_frames.is_none_or(|m| frames < m)
    {
        let Some(item) = source.next_frame() else {
            break;
        };
        match item {
            Ok(frame) => {
                frames += 1;
                let (w, h) = frame.image.dimensions();
                writeln!(out, "frame {} {} {w}x{h}", frame.seq, frame.t_capture_ns)?;
                last = Some(frame.image);
            }
            Err(e) => {
                lost += 1;
                writeln!(out, "lost {} {} {}", e.seq, e.t_capture_ns, e.message)?;
            }
        }
        out.flush()?;
    }
    let secs = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "summary: {frames} frames, {lost} lost in {secs:.1} s ({:.1} frames/s)",
        frames as f64 / secs.max(1e-9)
    )?;
    if let (Some(path), Some(img)) = (save, last) {
        img.save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if frames > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The command line, parsed.
struct Args {
    uri: String,
    seconds: Option<f64>,
    max_frames: Option<u64>,
    save: Option<std::path::PathBuf>,
    options: CameraOptions,
}

fn parse_args(args: Vec<String>) -> anyhow::Result<Args> {
    let mut uri = None;
    let mut seconds: Option<f64> = None;
    let mut max_frames: Option<u64> = None;
    let mut save = None;
    let mut options = CameraOptions::default();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1);
        match (args[i].as_str(), value) {
            ("--seconds", Some(v)) => seconds = Some(v.parse().context("--seconds")?),
            ("--frames", Some(v)) => max_frames = Some(v.parse().context("--frames")?),
            ("--fps", Some(v)) => options.fps = Some(v.parse().context("--fps")?),
            ("--save", Some(v)) => save = Some(std::path::PathBuf::from(v)),
            ("--format", Some(v)) => {
                options.format = Some(
                    PixelFormat::from_name(v)
                        .with_context(|| format!("--format {v}: use yuyv, uyvy, rgb24 or mjpeg"))?,
                )
            }
            ("--size", Some(v)) => {
                let (w, h) = v
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                    .with_context(|| format!("--size {v}: use WIDTHxHEIGHT"))?;
                options.size = Some((w, h));
            }
            (a, _) if uri.is_none() && !a.starts_with("--") => {
                uri = Some(a.to_string());
                i += 1;
                continue;
            }
            _ => anyhow::bail!(USAGE),
        }
        i += 2;
    }
    Ok(Args {
        uri: uri.context(USAGE)?,
        seconds,
        max_frames,
        save,
        options,
    })
}
