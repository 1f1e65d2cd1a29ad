//! `v4l2:///dev/videoN`: a V4L2 camera, mmap streaming, frames stamped by the driver.
//!
//! The source never ends and never stops the pipeline: when the device vanishes (unplugged,
//! driver reloaded) or stops delivering, every call yields a lost-frame report (at most one per
//! `reconnect_ms`) while it reopens the device, and frames resume once it is back. Opening at
//! start-up, by contrast, fails with a clear error (unknown device, no usable format).

use super::camera::{
    choose_format, describe, fourcc_str, timeval_ns, CameraOptions, CaptureClock, Geometry,
    Offered, Sizes,
};
use super::{Frame, FrameError, FrameSource, SourceError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use v4l::buffer::{Flags, Type};
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC};

/// Buffers in the mmap ring.
const BUFFERS: u32 = 4;
/// `POLLIN` (0x001 on every Linux architecture).
const POLLIN: i16 = 1;

/// An open, configured device with its buffer ring.
struct Open {
    // Dropped before `_device` (field order); both hold the file descriptor.
    stream: v4l::io::mmap::Stream<'static>,
    _device: Device,
    geometry: Geometry,
}

pub struct V4l2Camera {
    path: PathBuf,
    options: CameraOptions,
    open: Option<Open>,
    clock: CaptureClock,
    seq: u64,
    /// When the device was lost (for the "reconnected after" log) and when to retry.
    lost_since: Option<Instant>,
    next_try: Instant,
    /// Last reopen error, logged only when it changes.
    last_error: Option<String>,
    /// The driver's frame sequence number of the last frame, to count dropped frames.
    last_driver_seq: Option<u32>,
    /// Frames the driver numbered but the pipeline never saw (too slow, or skipped as stale).
    dropped: u64,
}

/// CLOCK_MONOTONIC now, ns: the clock V4L2 stamps buffers with.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    timeval_ns(t.tv_sec, 0).unwrap_or(0) + u64::try_from(t.tv_nsec).unwrap_or(0)
}

impl V4l2Camera {
    /// Opens and configures the device; errors say what is wrong and what to do.
    pub fn open(path: &Path, options: CameraOptions) -> Result<Self, SourceError> {
        let open = open_device(path, &options).map_err(|message| SourceError::Open {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            options,
            open: Some(open),
            clock: CaptureClock::new(monotonic_ns()),
            seq: 0,
            lost_since: None,
            next_try: Instant::now(),
            last_error: None,
            last_driver_seq: None,
            dropped: 0,
        })
    }

    fn origin(&self) -> String {
        self.path.display().to_string()
    }

    fn lost(&mut self, message: String) -> FrameError {
        let seq = self.seq;
        self.seq += 1;
        FrameError {
            seq,
            t_capture_ns: self.clock.report_time(monotonic_ns()),
            origin: self.origin(),
            message,
        }
    }

    /// Closes the device after a failure; the next call retries after `reconnect_ms`.
    fn drop_device(&mut self, why: &str) {
        if let Some(open) = self.open.take() {
            close(open);
        }
        if self.lost_since.is_none() {
            tracing::warn!(device = %self.path.display(), reason = why, reconnect_ms = self.options.reconnect_ms, "camera lost; reopening");
            self.lost_since = Some(Instant::now());
        }
        self.last_driver_seq = None;
        self.next_try = Instant::now() + Duration::from_millis(self.options.reconnect_ms);
    }

    /// Waits for the next retry time and tries to reopen; `Err` is the lost-frame report.
    fn reopen(&mut self) -> Result<(), FrameError> {
        let wait = self.next_try.saturating_duration_since(Instant::now());
        std::thread::sleep(wait);
        match open_device(&self.path, &self.options) {
            Ok(open) => {
                let after = self.lost_since.take().map(|t| t.elapsed());
                tracing::info!(
                    device = %self.path.display(),
                    after_s = after.map_or(0.0, |d| d.as_secs_f64()),
                    "camera reconnected"
                );
                self.open = Some(open);
                self.last_error = None;
                Ok(())
            }
            Err(message) => {
                if self.last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(device = %self.path.display(), error = %message, "camera still unavailable");
                    self.last_error = Some(message.clone());
                }
                self.next_try = Instant::now() + Duration::from_millis(self.options.reconnect_ms);
                Err(self.lost(format!(
                    "camera unavailable ({message}); retrying every {} ms",
                    self.options.reconnect_ms
                )))
            }
        }
    }

    fn read(&mut self) -> Result<Frame, FrameError> {
        let Some(open) = self.open.as_mut() else {
            return Err(self.lost("camera not open".into()));
        };
        let geometry = open.geometry;
        let handle = open.stream.handle();
        let mut stale = 0;
        let captured = loop {
            let (buf, meta) = match CaptureStream::next(&mut open.stream) {
                Ok(item) => item,
                Err(e) => break Err(e),
            };
            // A slower pipeline than camera leaves filled buffers queued: take the newest, so
            // the latency stays one frame (the skipped ones count as dropped).
            if stale < BUFFERS && handle.poll(POLLIN, 0).is_ok_and(|ready| ready > 0) {
                stale += 1;
                continue;
            }
            break {
                let used = (meta.bytesused as usize).min(buf.len());
                let monotonic = meta.flags & Flags::TIMESTAMP_MASK == Flags::TIMESTAMP_MONOTONIC;
                let driver_ns = if monotonic {
                    timeval_ns(meta.timestamp.sec, meta.timestamp.usec)
                } else {
                    None
                };
                let image = if meta.flags.contains(Flags::ERROR) {
                    Err("the driver marked the buffer as corrupt".to_string())
                } else {
                    buf.get(..used)
                        .ok_or_else(|| "short buffer".to_string())
                        .and_then(|data| super::camera::decode(&geometry, data))
                };
                Ok((image, driver_ns, meta.sequence))
            };
        };
        match captured {
            Ok((image, driver_ns, driver_seq)) => {
                if let Some(last) = self.last_driver_seq {
                    self.dropped += u64::from(driver_seq.wrapping_sub(last).saturating_sub(1));
                }
                self.last_driver_seq = Some(driver_seq);
                let t_capture_ns = self.clock.frame_time(driver_ns, monotonic_ns());
                let seq = self.seq;
                self.seq += 1;
                match image {
                    Ok(image) => Ok(Frame {
                        seq,
                        t_capture_ns,
                        image,
                        origin: self.origin(),
                    }),
                    Err(message) => Err(FrameError {
                        seq,
                        t_capture_ns,
                        origin: self.origin(),
                        message,
                    }),
                }
            }
            Err(e) => {
                // A timed-out or failed dequeue leaves the ring in an unknown state: restart it.
                let why = if e.kind() == std::io::ErrorKind::TimedOut {
                    format!("no frame for {} ms", self.options.timeout_ms)
                } else {
                    format!("capture failed: {e}")
                };
                self.drop_device(&why);
                Err(self.lost(format!(
                    "{why}; reopening every {} ms",
                    self.options.reconnect_ms
                )))
            }
        }
    }
}

impl Drop for V4l2Camera {
    fn drop(&mut self) {
        tracing::info!(device = %self.path.display(), items = self.seq, dropped = self.dropped, "camera closed");
        if let Some(open) = self.open.take() {
            close(open);
        }
    }
}

impl FrameSource for V4l2Camera {
    fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        if self.open.is_none() {
            if let Err(report) = self.reopen() {
                return Some(Err(report));
            }
        }
        Some(self.read())
    }

    fn len_hint(&self) -> Option<usize> {
        None
    }

    /// The size the driver accepted (it may differ from the one asked for).
    fn frame_size(&self) -> Option<(u32, u32)> {
        self.open
            .as_ref()
            .map(|o| (o.geometry.width, o.geometry.height))
    }

    fn disconnected(&self) -> bool {
        self.open.is_none()
    }

    fn capture_age(&self, t_capture_ns: u64) -> Option<Duration> {
        Some(Duration::from_nanos(
            self.clock.age_ns(t_capture_ns, monotonic_ns()),
        ))
    }
}

/// Drops a stream without letting the `v4l` crate's drop (which panics when `VIDIOC_STREAMOFF`
/// or unmapping fails with anything but ENODEV) take the daemon down.
fn close(open: Open) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(open))).is_err() {
        tracing::warn!("closing the camera stream failed; buffers may leak until exit");
    }
}

/// Open → capabilities → format choice → set format (and rate) → mmap ring.
fn open_device(path: &Path, options: &CameraOptions) -> Result<Open, String> {
    let device = Device::with_path(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "no such device ({e}); is the camera plugged in and its driver loaded? \
             `v4l2-ctl --list-devices` lists the cameras"
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot open ({e}); the service user needs the `video` group (SupplementaryGroups=video)"
        ),
        _ => format!("cannot open ({e})"),
    })?;
    let caps = device
        .query_caps()
        .map_err(|e| format!("not a V4L2 device (VIDIOC_QUERYCAP: {e})"))?;
    use v4l::capability::Flags as Cap;
    if !caps.capabilities.contains(Cap::VIDEO_CAPTURE) {
        let hint = if caps.capabilities.contains(Cap::VIDEO_CAPTURE_MPLANE) {
            "multi-planar capture is not supported yet"
        } else {
            "it cannot capture video"
        };
        return Err(format!(
            "`{}` (driver {}) is no single-planar capture device: {hint}; pick another /dev/video*",
            caps.card, caps.driver
        ));
    }
    if !caps.capabilities.contains(Cap::STREAMING) {
        return Err(format!(
            "`{}` (driver {}) cannot stream (no V4L2_CAP_STREAMING)",
            caps.card, caps.driver
        ));
    }
    let offered = offered_formats(&device)?;
    let choice = choose_format(&offered, options.format, options.size)
        .map_err(|e| format!("`{}` (driver {}): {e}", caps.card, caps.driver))?;
    let mut wanted = device
        .format()
        .map_err(|e| format!("cannot read the format (VIDIOC_G_FMT: {e})"))?;
    wanted.fourcc = FourCC::new(&choice.fourcc);
    if let Some((w, h)) = choice.size {
        wanted.width = w;
        wanted.height = h;
    }
    let got = device
        .set_format(&wanted)
        .map_err(|e| format!("cannot set {} (VIDIOC_S_FMT: {e})", choice.format))?;
    if got.fourcc.repr != choice.fourcc {
        return Err(format!(
            "asked for {} but the driver chose {}; offered: {}",
            fourcc_str(choice.fourcc),
            fourcc_str(got.fourcc.repr),
            describe(&offered)
        ));
    }
    if let Some((w, h)) = options.size {
        if (got.width, got.height) != (w, h) {
            tracing::warn!(
                device = %path.display(),
                wanted = %format!("{w}×{h}"),
                got = %format!("{}×{}", got.width, got.height),
                "the camera does not offer the calibrated image size; frames will be reported as calibration faults"
            );
        }
    }
    if let Some(fps) = options.fps {
        let rate = fps.round().clamp(1.0, 1000.0) as u32;
        if let Err(e) = device.set_params(&v4l::video::capture::Parameters::with_fps(rate)) {
            tracing::warn!(device = %path.display(), fps = rate, error = %e, "cannot set the frame rate; keeping the driver's");
        }
    }
    let mut stream = v4l::io::mmap::Stream::with_buffers(&device, Type::VideoCapture, BUFFERS)
        .map_err(|e| format!("cannot map capture buffers (VIDIOC_REQBUFS: {e}); is another program using the camera?"))?;
    stream.set_timeout(Duration::from_millis(
        options.timeout_ms.min(i32::MAX as u64),
    ));
    let geometry = Geometry {
        format: choice.format,
        width: got.width,
        height: got.height,
        stride: got.stride as usize,
    };
    tracing::info!(
        device = %path.display(),
        card = %caps.card,
        driver = %caps.driver,
        format = %choice.format,
        size = %format!("{}×{}", got.width, got.height),
        "camera open"
    );
    Ok(Open {
        stream,
        _device: device,
        geometry,
    })
}

/// Every capture format with its frame sizes.
fn offered_formats(device: &Device) -> Result<Vec<Offered>, String> {
    let formats = device
        .enum_formats()
        .map_err(|e| format!("cannot list formats (VIDIOC_ENUM_FMT: {e})"))?;
    Ok(formats
        .into_iter()
        .map(|f| {
            let sizes = device.enum_framesizes(f.fourcc).ok().and_then(|list| {
                let mut discrete = Vec::new();
                for s in list {
                    match s.size {
                        v4l::framesize::FrameSizeEnum::Discrete(d) => {
                            discrete.push((d.width, d.height))
                        }
                        v4l::framesize::FrameSizeEnum::Stepwise(s) => {
                            return Some(Sizes::Range {
                                min: (s.min_width, s.min_height),
                                max: (s.max_width, s.max_height),
                                step: (s.step_width, s.step_height),
                            })
                        }
                    }
                }
                (!discrete.is_empty()).then_some(Sizes::Discrete(discrete))
            });
            Offered {
                fourcc: f.fourcc.repr,
                description: f.description,
                sizes,
            }
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unknown_devices_are_named_with_what_to_do() {
        let err = super::super::open(
            "v4l2:///dev/no-such-video9",
            super::super::Timing::FixedRate(10.0),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("/dev/no-such-video9") && err.contains("v4l2-ctl --list-devices"),
            "{err}"
        );
        // Not a V4L2 device at all.
        let err = V4l2Camera::open(Path::new("/dev/null"), CameraOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("/dev/null") && err.contains("not a V4L2 device"),
            "{err}"
        );
    }
}
