//! Where a run's frames and CAN input come from: the config's source and CAN link, or a
//! recording. The live SocketCAN link also takes the status and warnings out.

use crate::config::{CanMode, Config};
#[cfg(target_os = "linux")]
use crate::metrics::BusCounters;
use crate::metrics::LinkCounters;
use adas_core::aeb::decider::Decision;
#[cfg(target_os = "linux")]
use adas_core::aeb::decider::Stage;
use adas_core::aeb::{EgoState, InhibitReason};
use adas_core::can::messages::Status;
#[cfg(target_os = "linux")]
use adas_core::can::messages::{fault, status_message, warning_message};
use adas_core::can::supervision::EgoInput;
use adas_io::can::replay::CandumpReplay;
use adas_io::source;
use adas_types::CanFrame;
use anyhow::Context;
use std::fs::File;
use std::time::Instant;

/// Where frames, CAN input and (optionally) detections come from.
pub struct Inputs {
    pub(crate) source: Box<dyn source::FrameSource>,
    pub(crate) link: CanLink,
    /// Object-list replay: the detections come from the source (a recording).
    pub(crate) recorded_detections: bool,
}

impl Inputs {
    /// The config's source and CAN link; a camera is asked for `image_size` (the
    /// calibration's).
    pub fn from_config(config: &Config, image_size: (u32, u32)) -> anyhow::Result<Inputs> {
        Ok(Inputs {
            source: config.source.open(image_size)?,
            link: CanLink::open(&config.can)?,
            recorded_detections: false,
        })
    }

    /// A recording's frames and CAN input (times as recorded), streamed from the file.
    /// `recorded_detections`: take the detections from the recording instead of running the
    /// detector (object-list replay).
    pub fn from_recording(
        reader: adas_record::reader::FrameReader<std::io::BufReader<File>>,
        window: adas_io::source::recording::Window,
        recorded_detections: bool,
        config: &Config,
    ) -> anyhow::Result<Inputs> {
        if recorded_detections {
            reader.require_outcomes()?;
        } else {
            reader.require_camera()?;
        }
        let link = if adas_record::reader::has_can_input(reader.path())? {
            CanLink::Recorded {
                input: EgoInput::new(config.can.supervision()),
            }
        } else {
            CanLink::Fixed
        };
        Ok(Inputs {
            source: Box::new(adas_io::source::recording::RecordingSource::new(
                reader,
                window,
                !recorded_detections,
            )),
            link,
            recorded_detections,
        })
    }
}

/// Where the ego input comes from and where CAN goes besides `can.log`.
pub(crate) enum CanLink {
    /// The fixed `[ego] speed_kph`.
    Fixed,
    /// A candump log replayed as input, on the camera source's clock.
    Replay { log: CandumpReplay, input: EgoInput },
    /// The CAN input a recording holds, handed over frame by frame by its source.
    Recorded { input: EgoInput },
    /// Live SocketCAN (own thread): status/warnings out, supervised ego input in.
    #[cfg(target_os = "linux")]
    Bus {
        bus: adas_io::can::socketcan::CanBus,
        input: EgoInput,
    },
}

impl CanLink {
    pub(crate) fn open(config: &crate::config::CanConfig) -> anyhow::Result<CanLink> {
        match config.mode {
            CanMode::CandumpFile => match &config.input_log {
                None => Ok(CanLink::Fixed),
                Some(path) => Ok(CanLink::Replay {
                    log: CandumpReplay::open(path, 0)?,
                    input: EgoInput::new(config.supervision()),
                }),
            },
            #[cfg(target_os = "linux")]
            CanMode::Socketcan => Ok(CanLink::Bus {
                bus: adas_io::can::socketcan::CanBus::start(
                    adas_io::can::socketcan::CanBusConfig {
                        interface: config.interface.clone(),
                        status_period_ms: config.status_period_ms,
                        warning_period_ms: config.warning_period_ms,
                        reconnect_ms: config.reconnect_ms,
                        stale_after_ms: config.stale_after_ms,
                    },
                    Instant::now(),
                    // Nothing decided yet: unavailable, frame lost, until the first frame is.
                    status_message(&Status::unavailable(fault::FRAME_LOST, 0.0, 0.0), 0).encode(),
                )
                .context("cannot start the SocketCAN thread")?,
                input: EgoInput::new(config.supervision()),
            }),
            #[cfg(not(target_os = "linux"))]
            CanMode::Socketcan => anyhow::bail!("[can] mode = \"socketcan\" needs Linux"),
        }
    }

    /// The ego sample for a frame captured at `t_frame_ns` (`None`: use the fixed speed) and the
    /// supervision's reason when the input cannot be used. A sample the supervision rejects is
    /// passed on marked invalid, so the decider is inhibited whatever its own timeout.
    /// `recorded`: the CAN frames the source recorded up to this frame (used by `Recorded`).
    pub(crate) fn ego(
        &mut self,
        t_frame_ns: u64,
        recorded: Vec<(u64, CanFrame)>,
        rx: &mut Vec<(u64, CanFrame)>,
    ) -> (Option<Option<EgoState>>, Option<InhibitReason>) {
        let (input, now_ns) = match self {
            CanLink::Fixed => return (None, None),
            CanLink::Replay { log, input } => {
                for (t, f) in log.until(t_frame_ns) {
                    input.on_frame(t, &f);
                    rx.push((t, f));
                }
                (input, t_frame_ns)
            }
            CanLink::Recorded { input } => {
                for (t, f) in recorded {
                    input.on_frame(t, &f);
                    rx.push((t, f));
                }
                (input, t_frame_ns)
            }
            #[cfg(target_os = "linux")]
            CanLink::Bus { bus, input } => {
                for (t, f) in bus.drain_received() {
                    input.on_frame(t, &f);
                    rx.push((t, f));
                }
                let now = bus.now_ns();
                (input, now)
            }
        };
        let reason = input.inhibit(now_ns);
        let ego = input.ego_state(now_ns).map(|mut e| {
            // Onto the frame's clock: same age as on the CAN clock.
            let age = now_ns.saturating_sub(e.t_ns);
            e.t_ns = t_frame_ns.saturating_sub(age);
            e.valid &= reason.is_none();
            e
        });
        (Some(ego), reason)
    }
}

impl CanLink {
    /// Where the ego speed comes from and where CAN goes, in words (the start-up line).
    pub(crate) fn describe(&self, config: &crate::config::Config) -> String {
        match self {
            CanLink::Fixed => format!(
                "CAN to can.log, ego speed {} km/h (config)",
                config.ego.speed_kph
            ),
            CanLink::Replay { .. } => format!(
                "CAN to can.log, ego speed from {}",
                config
                    .can
                    .input_log
                    .as_ref()
                    .map_or_else(|| "a candump log".into(), |p| p.display().to_string())
            ),
            CanLink::Recorded { .. } => "CAN to can.log, ego speed from the recording".into(),
            #[cfg(target_os = "linux")]
            CanLink::Bus { .. } => format!("CAN on {} (SocketCAN)", config.can.interface),
        }
    }

    /// Hands the frame's status and warning to the live bus, whose thread sends them on its own
    /// schedule (status every period, warnings on change and while active) with its own
    /// counters. Other links have no bus: `can.log` is written by the run loop.
    #[cfg(target_os = "linux")]
    pub(crate) fn publish(&self, status: &Status, inhibit: u8, decision: Option<&Decision>) {
        if let CanLink::Bus { bus, .. } = self {
            bus.set_status(status_message(status, inhibit).encode());
            if let Some(d) = decision {
                bus.set_warning(warning_message(d).encode(), d.stage > Stage::None);
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn publish(&self, _status: &Status, _inhibit: u8, _decision: Option<&Decision>) {}

    /// The link's counters so far, for the metrics.
    pub(crate) fn counters(&self) -> LinkCounters {
        let inputs =
            |i: &EgoInput| Some([i.speed.counters, i.driver.counters, i.yaw_rate.counters]);
        match self {
            CanLink::Fixed => LinkCounters::default(),
            CanLink::Replay { log, input } => LinkCounters {
                inputs: inputs(input),
                bad_log_lines: Some(log.stats().bad_lines),
                ..LinkCounters::default()
            },
            CanLink::Recorded { input } => LinkCounters {
                inputs: inputs(input),
                ..LinkCounters::default()
            },
            #[cfg(target_os = "linux")]
            CanLink::Bus { bus, input } => {
                use std::sync::atomic::Ordering::Relaxed;
                let s = bus.stats();
                LinkCounters {
                    bus: Some(BusCounters {
                        tx_frames: s.tx_frames.load(Relaxed),
                        tx_errors: s.tx_errors.load(Relaxed),
                        tx_dropped: s.tx_dropped.load(Relaxed),
                        bus_off: s.bus_off.load(Relaxed),
                        error_frames: s.error_frames.load(Relaxed),
                        rx_overflow: s.rx_overflow.load(Relaxed),
                        link_up: s.link_ok.load(Relaxed),
                    }),
                    inputs: inputs(input),
                    bad_log_lines: None,
                }
            }
        }
    }

    /// The run is over: the bus says so (status off) and the input's counters are logged.
    pub(crate) fn shutdown(self) {
        match self {
            CanLink::Replay { log, input } => {
                let s = log.stats();
                tracing::info!(
                    frames = s.frames,
                    bad_lines = s.bad_lines,
                    not_data = s.ignored,
                    other_ids = input.other_frames,
                    "CAN input log"
                );
            }
            #[cfg(target_os = "linux")]
            CanLink::Bus { bus, input } => {
                use std::sync::atomic::Ordering::Relaxed;
                let c = &input.speed.counters;
                tracing::info!(
                    frames = c.frames,
                    accepted = c.accepted,
                    crc_errors = c.crc_errors,
                    sequence_errors = c.sequence_errors,
                    dlc_errors = c.dlc_errors,
                    range_errors = c.range_errors,
                    timeouts = c.timeouts,
                    other_ids = input.other_frames,
                    rx_remote = bus.stats().rx_remote.load(Relaxed),
                    rx_overflow = bus.stats().rx_overflow.load(Relaxed),
                    "ego speed input"
                );
                bus.shutdown(status_message(&Status::off(), 0).encode());
            }
            CanLink::Fixed | CanLink::Recorded { .. } => {}
        }
    }
}
