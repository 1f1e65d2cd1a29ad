//! `adas-camera`: the daemon's camera source alone — open, negotiate, stream, reconnect — without
//! detector or CAN. For bench and VM tests of a V4L2 device and for checking a camera on the
//! vehicle before running the daemon.
//!
//! ```text
//! adas-camera v4l2:///dev/video0 [--seconds S] [--frames N] [--format yuyv|uyvy|rgb24|mjpeg]
//!             [--size WxH] [--fps F] [--save last.png] [--device-timeout S] [-v|-q]
//! ```
//! Prints one line per frame (`frame SEQ T_NS WxH`) or lost frame (`lost SEQ T_NS MESSAGE`) on
//! stdout, and a summary at the end. SIGTERM/SIGINT end it. A camera device that does not exist
//! yet is waited for, and a camera that delivers no frame is retried, up to `--device-timeout`;
//! then the run ends with exit status 4. After the first frame, an unplugged camera is retried
//! for as long as the run lasts (lost-frame lines meanwhile), as in the daemon.

use adas_io::source::camera::parse_uri;
use adas_io::source::{CameraOptions, FrameSource, PixelFormat, SourceError, Timing};
use anyhow::Context;
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "adas-camera",
    version,
    about = "The daemon's camera source alone: open, negotiate, stream and reconnect a V4L2 \
             camera, one line per frame",
    after_help = "Exit status: 0 frames came, 1 failure (e.g. no usable format), 2 usage error, \
                  4 no frame within --device-timeout (device missing or silent). Logs go to \
                  stderr; ADASD_LOG=info overrides -v/-q. docs/CLI.md has the details.",
    help_expected = true
)]
struct Cli {
    #[command(flatten)]
    verbosity: adas_cli::Verbosity,
    /// The camera: v4l2:///dev/videoN, or a stable link such as v4l2:///dev/v4l/by-id/….
    uri: String,
    /// Stop after this many seconds (default: run until SIGTERM/SIGINT).
    #[arg(long, value_parser = adas_cli::seconds)]
    seconds: Option<f64>,
    /// Stop after this many frames.
    #[arg(long)]
    frames: Option<u64>,
    /// Pixel format to ask for (default: the first the camera offers of yuyv, uyvy, rgb24,
    /// mjpeg).
    #[arg(long, value_parser = pixel_format)]
    format: Option<PixelFormat>,
    /// Frame size to ask for, WIDTHxHEIGHT (default: the driver's current size).
    #[arg(long, value_parser = frame_size)]
    size: Option<(u32, u32)>,
    /// Frame rate to ask for, Hz (default: the driver's current rate).
    #[arg(long, value_parser = adas_cli::seconds)]
    fps: Option<f64>,
    /// Write the last frame to this PNG at the end.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Give up with exit status 4 when no frame has come this many seconds after the start (a
    /// missing device node is waited for until then).
    #[arg(long, default_value_t = 10.0, value_parser = adas_cli::seconds)]
    device_timeout: f64,
}

fn pixel_format(name: &str) -> Result<PixelFormat, String> {
    PixelFormat::from_name(name).ok_or_else(|| format!("`{name}`: use yuyv, uyvy, rgb24 or mjpeg"))
}

fn frame_size(text: &str) -> Result<(u32, u32), String> {
    text.split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
        .filter(|&(w, h)| w > 0 && h > 0)
        .ok_or_else(|| format!("`{text}`: use WIDTHxHEIGHT, e.g. 640x480"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    adas_cli::helper_main("adas-camera", &cli.verbosity, || run(&cli))
}

/// The run gave up on the device: `why`, and what to do.
fn no_device(uri: &str, started: Instant, why: &str) -> anyhow::Error {
    adas_cli::NoDevice(format!(
        "{uri}: {why} in {:.1} s. Is the camera plugged in and its driver loaded? \
         `v4l2-ctl --list-devices` lists the cameras; a longer --device-timeout waits longer",
        started.elapsed().as_secs_f64()
    ))
    .into()
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    let options = CameraOptions {
        format: cli.format,
        size: cli.size,
        fps: cli.fps,
        ..CameraOptions::default()
    };
    let started = Instant::now();
    let give_up = started + Duration::from_secs_f64(cli.device_timeout);
    let Some(mut source) = open(&cli.uri, &options, give_up, &stop)? else {
        return Err(no_device(&cli.uri, started, "the device did not appear"));
    };
    let deadline = cli.seconds.map(|s| started + Duration::from_secs_f64(s));
    let (mut frames, mut lost) = (0u64, 0u64);
    let mut last = None;
    let mut out = std::io::stdout().lock();
    while !stop.load(Ordering::SeqCst)
        && deadline.is_none_or(|d| Instant::now() < d)
        && cli.frames.is_none_or(|m| frames < m)
        && (frames > 0 || Instant::now() < give_up)
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
    if frames == 0 {
        return Err(no_device(
            &cli.uri,
            started,
            "the device opened but delivered no frame",
        ));
    }
    if let (Some(path), Some(img)) = (&cli.save, last) {
        img.save(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the source; a camera whose device node does not exist yet is tried again every
/// `reconnect_ms` until `give_up` (`None` then). Any other error (no usable format, no
/// permission) is final at once: waiting would not change it.
fn open(
    uri: &str,
    options: &CameraOptions,
    give_up: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<Option<Box<dyn FrameSource>>> {
    let device = parse_uri(uri).ok();
    loop {
        match adas_io::source::open_with(uri, Timing::FromSource { fallback_fps: 10.0 }, options) {
            Ok(source) => return Ok(Some(source)),
            Err(e @ SourceError::Open { .. }) if device.as_ref().is_some_and(|d| !d.exists()) => {
                if Instant::now() >= give_up || stop.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                tracing::warn!("{e}; waiting for it");
                std::thread::sleep(Duration::from_millis(options.reconnect_ms));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_argument_has_help_and_the_parser_is_consistent() {
        // `help_expected`: clap's debug assertions refuse an argument without help text.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
