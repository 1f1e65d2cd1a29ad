//! SocketCAN I/O on a dedicated thread, so the pipeline never blocks on the bus.
//!
//! The pipeline hands over the *content* of the status and warning messages ([`CanBus::set_status`],
//! [`CanBus::set_warning`]); the I/O thread adds the E2E counter and CRC and sends:
//! - `AEB_Status` every status period (100 ms), also when the pipeline is stuck or idle, with the
//!   CAN error count and the CAN fault bit filled in here;
//! - `AEB_Warning` at once when its content changes, and every period while a stage is active.
//!
//! Received frames are stamped (monotonic ns since [`CanBus::origin`]) and queued for the
//! [`adas_core::can::supervision::EgoInput`]. Bus errors — ENOBUFS (queue full), ENETDOWN (interface down),
//! ENODEV/ENXIO (interface gone), bus-off error frames — are counted and reported in the status
//! message; a write is retried within the period and otherwise dropped, and a socket whose
//! interface vanished is reopened every `reconnect_ms` until it is back.

use adas_core::can::dbc::{AebStatus, AebWarning};
use adas_core::can::e2e::Protector;
use adas_core::can::messages::Mode;
use adas_types::CanFrame;
use socketcan::{
    CanDataFrame, CanSocket, EmbeddedFrame, ExtendedId, Id, Socket, SocketOptions, StandardId,
};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings of the SocketCAN link.
#[derive(Debug, Clone)]
pub struct CanBusConfig {
    pub interface: String,
    pub status_period_ms: u64,
    pub warning_period_ms: u64,
    pub reconnect_ms: u64,
    /// A status content older than this means the pipeline stalled: the thread sends
    /// Unavailable with `AEB_FaultFrameLost` and stops repeating an active warning.
    pub stale_after_ms: u64,
}

/// Counters shared with the I/O thread.
#[derive(Debug, Default)]
pub struct CanStats {
    pub tx_frames: AtomicU64,
    /// Write errors of any kind (ENOBUFS, ENETDOWN, …).
    pub tx_errors: AtomicU64,
    /// Frames given up after the retries.
    pub tx_dropped: AtomicU64,
    pub rx_frames: AtomicU64,
    /// Remote (RTR) frames received: no input carries data that way, so they are dropped here.
    pub rx_remote: AtomicU64,
    pub bus_off: AtomicU64,
    pub error_frames: AtomicU64,
    pub reconnects: AtomicU64,
    /// Received frames dropped, oldest first, because the pipeline did not drain them in time.
    pub rx_overflow: AtomicU64,
    /// The socket is open and the last write went through.
    pub link_ok: AtomicBool,
}

impl CanStats {
    pub fn errors(&self) -> u64 {
        self.tx_errors.load(Ordering::Relaxed) + self.bus_off.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
struct Outbox {
    status: Option<CanFrame>,
    /// When the pipeline last handed over a status.
    status_at: Option<Instant>,
    warning: Option<CanFrame>,
    warning_active: bool,
    warning_changed: bool,
    final_status: Option<CanFrame>,
}

/// The SocketCAN link. Opening never fails: a missing interface is retried in the background.
pub struct CanBus {
    outbox: Arc<Mutex<Outbox>>,
    rx: Arc<Mutex<VecDeque<(u64, CanFrame)>>>,
    stats: Arc<CanStats>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    origin: Instant,
}

impl CanBus {
    /// Starts the link's thread, which sends `first_status` every period until the first
    /// [`CanBus::set_status`]: the heartbeat runs from the start, while the model loads and the
    /// first frame is decided, not only once decisions flow.
    pub fn start(
        config: CanBusConfig,
        origin: Instant,
        first_status: CanFrame,
    ) -> std::io::Result<CanBus> {
        let outbox = Arc::new(Mutex::new(Outbox {
            status: Some(first_status),
            ..Outbox::default()
        }));
        let rx = Arc::new(Mutex::new(VecDeque::with_capacity(RX_QUEUE)));
        let stats = Arc::new(CanStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            config,
            outbox: outbox.clone(),
            rx_queue: rx.clone(),
            stats: stats.clone(),
            stop: stop.clone(),
            origin,
            socket: None,
            status_counter: Protector::default(),
            warning_counter: Protector::default(),
            reported_stall: false,
        };
        let thread = std::thread::Builder::new()
            .name("adasd-can".into())
            .spawn(move || worker.run())?;
        Ok(CanBus {
            outbox,
            rx,
            stats,
            stop,
            thread: Some(thread),
            origin,
        })
    }

    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Monotonic ns since the origin (the receive-time clock).
    pub fn now_ns(&self) -> u64 {
        ns_since(self.origin)
    }

    pub fn stats(&self) -> &CanStats {
        &self.stats
    }

    /// The latest status content (counter and CRC are added when sent).
    pub fn set_status(&self, frame: CanFrame) {
        if let Ok(mut o) = self.outbox.lock() {
            o.status = Some(frame);
            o.status_at = Some(Instant::now());
        }
    }

    /// The latest warning content; sent at once when it differs from the last one, and every
    /// period while `active`.
    pub fn set_warning(&self, frame: CanFrame, active: bool) {
        if let Ok(mut o) = self.outbox.lock() {
            let changed = o.warning.is_none_or(|w| w.data != frame.data);
            o.warning = Some(frame);
            o.warning_active = active;
            o.warning_changed |= changed;
        }
    }

    /// Every frame received since the last call, with its receive time.
    pub fn drain_received(&self) -> Vec<(u64, CanFrame)> {
        match self.rx.lock() {
            Ok(mut queue) => std::mem::take(&mut *queue).into(),
            Err(_) => Vec::new(),
        }
    }

    /// Sends `final_status` (e.g. mode Off) and stops the I/O thread (waits at most ~0.5 s).
    pub fn shutdown(mut self, final_status: CanFrame) {
        if let Ok(mut o) = self.outbox.lock() {
            o.final_status = Some(final_status);
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for CanBus {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The status as it goes on the bus (pure): the CAN error count and the bus fault are the
/// thread's own knowledge; a stale status (the pipeline stalled) says Unavailable with
/// `AEB_FaultFrameLost`, whatever it said when it was handed over.
fn outgoing_status(mut s: AebStatus, errors: u64, link_ok: bool, stale: bool) -> AebStatus {
    s.aeb_can_errors = u8::try_from(errors.min(15)).unwrap_or(15);
    if !link_ok && errors > 0 {
        s.aeb_fault_can_bus = 1;
    }
    if stale && s.aeb_mode != Mode::Off as u8 {
        s.aeb_mode = Mode::Unavailable as u8;
        s.aeb_fault_frame_lost = 1;
    }
    s
}

struct Worker {
    config: CanBusConfig,
    outbox: Arc<Mutex<Outbox>>,
    rx_queue: Arc<Mutex<VecDeque<(u64, CanFrame)>>>,
    stats: Arc<CanStats>,
    stop: Arc<AtomicBool>,
    origin: Instant,
    socket: Option<CanSocket>,
    status_counter: Protector,
    warning_counter: Protector,
    /// The stall was logged (once per stall).
    reported_stall: bool,
}

/// Monotonic ns since `origin`; saturates after 584 years of uptime rather than wrapping to 0,
/// which would make every input look fresh.
fn ns_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Our frame as SocketCAN's, with its id's width (`None` for an id that fits neither width,
/// which no message of ours has: such a frame is not sent).
fn to_socketcan(frame: &CanFrame) -> Option<socketcan::CanFrame> {
    let id = if frame.is_extended() {
        Id::Extended(ExtendedId::new(frame.raw_id())?)
    } else {
        Id::Standard(StandardId::new(u16::try_from(frame.id).ok()?)?)
    };
    socketcan::CanFrame::new(id, frame.payload())
}

/// A received data frame as ours: an extended id keeps [`CanFrame::EFF_FLAG`], so it is never
/// taken for the standard-id input with the same number.
fn from_socketcan(frame: &CanDataFrame) -> CanFrame {
    let id = match frame.id() {
        Id::Standard(id) => u32::from(id.as_raw()),
        Id::Extended(id) => id.as_raw() | CanFrame::EFF_FLAG,
    };
    let payload = frame.data();
    let len = payload.len().min(8);
    let mut data = [0u8; 8];
    data[..len].copy_from_slice(&payload[..len]);
    CanFrame {
        id,
        len: len as u8,
        data,
    }
}

fn is_gone(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_codes::ENODEV | libc_codes::ENXIO)
    )
}

/// Received frames kept for the pipeline (20 s of a 50 Hz input).
const RX_QUEUE: usize = 1024;

/// The errno values used here (Linux).
mod libc_codes {
    pub const ENXIO: i32 = 6;
    pub const ENODEV: i32 = 19;
    pub const ENOBUFS: i32 = 105;
}

impl Worker {
    fn run(mut self) {
        let period = Duration::from_millis(self.config.status_period_ms.max(10));
        let warning_period = Duration::from_millis(self.config.warning_period_ms.max(10));
        let reconnect = Duration::from_millis(self.config.reconnect_ms.max(10));
        let stale_after = Duration::from_millis(self.config.stale_after_ms);
        let mut next_status = Instant::now();
        let mut next_warning = Instant::now();
        let mut next_open = Instant::now();
        loop {
            if self.socket.is_none() && Instant::now() >= next_open {
                self.open();
                next_open = Instant::now() + reconnect;
            }
            if self.stop.load(Ordering::SeqCst) {
                let last = self
                    .outbox
                    .lock()
                    .ok()
                    .and_then(|mut o| o.final_status.take());
                if let Some(f) = last {
                    self.send_status(f, false);
                }
                break;
            }
            let now = Instant::now();
            let (status, warning, stale) = match self.outbox.lock() {
                Ok(mut o) => {
                    let stale = o
                        .status_at
                        .is_some_and(|t| now.saturating_duration_since(t) > stale_after);
                    let status = (now >= next_status).then_some(o.status).flatten();
                    // A stalled pipeline's warning is old news: let the receiver's timeout act.
                    let due =
                        o.warning_changed || (o.warning_active && !stale && now >= next_warning);
                    let warning = due.then_some(o.warning).flatten();
                    if warning.is_some() {
                        o.warning_changed = false;
                    }
                    (status, warning, stale)
                }
                Err(_) => (None, None, false),
            };
            if now >= next_status {
                next_status = now + period;
                if let Some(f) = status {
                    if stale && !self.reported_stall {
                        tracing::error!(
                            after_ms = self.config.stale_after_ms,
                            "no frame decided: AEB reported unavailable on CAN until one is"
                        );
                    }
                    self.reported_stall = stale;
                    self.send_status(f, stale);
                }
            }
            if let Some(mut f) = warning {
                next_warning = now + warning_period;
                self.warning_counter.protect(&mut f, AebWarning::E2E);
                self.send(&f);
            }
            self.receive_until(next_status.min(now + Duration::from_millis(10)));
        }
    }

    fn open(&mut self) {
        match CanSocket::open(&self.config.interface) {
            Ok(s) => {
                let _ = s.set_error_filter_accept_all();
                let _ = s.set_read_timeout(Duration::from_millis(5));
                if self.stats.reconnects.fetch_add(1, Ordering::Relaxed) > 0 {
                    tracing::info!(interface = %self.config.interface, "CAN interface back");
                }
                self.socket = Some(s);
            }
            Err(e) => {
                self.stats.link_ok.store(false, Ordering::Relaxed);
                tracing::warn!(interface = %self.config.interface, error = %e, "cannot open CAN interface; retrying");
            }
        }
    }

    fn send_status(&mut self, frame: CanFrame, stale: bool) {
        let mut frame = frame;
        if let Ok(s) = AebStatus::decode(frame.payload()) {
            let link_ok = self.stats.link_ok.load(Ordering::Relaxed);
            frame = outgoing_status(s, self.stats.errors(), link_ok, stale).encode();
        }
        self.status_counter.protect(&mut frame, AebStatus::E2E);
        self.send(&frame);
    }

    fn send(&mut self, frame: &CanFrame) {
        let Some(out) = to_socketcan(frame) else {
            tracing::warn!(id = frame.id, "CAN frame with an invalid id not sent");
            self.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(socket) = &self.socket else {
            self.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        for attempt in 0..3 {
            match socket.write_frame(&out) {
                Ok(()) => {
                    self.stats.tx_frames.fetch_add(1, Ordering::Relaxed);
                    self.stats.link_ok.store(true, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    self.stats.tx_errors.fetch_add(1, Ordering::Relaxed);
                    self.stats.link_ok.store(false, Ordering::Relaxed);
                    if is_gone(&e) {
                        tracing::warn!(error = %e, "CAN interface gone; reopening");
                        self.socket = None;
                        break;
                    }
                    if e.raw_os_error() == Some(libc_codes::ENOBUFS) && attempt < 2 {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    tracing::debug!(error = %e, "CAN write failed");
                    break;
                }
            }
        }
        self.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn receive_until(&mut self, deadline: Instant) {
        loop {
            let Some(socket) = &self.socket else {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                return;
            };
            match socket.read_frame() {
                Ok(socketcan::CanFrame::Data(f)) => {
                    let t = ns_since(self.origin);
                    let frame = from_socketcan(&f);
                    self.stats.rx_frames.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut queue) = self.rx_queue.lock() {
                        // A stalled pipeline must find the *newest* inputs when it comes back
                        // (a stale speed inhibits the decider): drop the oldest.
                        if queue.len() >= RX_QUEUE {
                            queue.pop_front();
                            self.stats.rx_overflow.fetch_add(1, Ordering::Relaxed);
                        }
                        queue.push_back((t, frame));
                    }
                }
                Ok(socketcan::CanFrame::Error(e)) => {
                    self.stats.error_frames.fetch_add(1, Ordering::Relaxed);
                    if matches!(e.into_error(), socketcan::CanError::BusOff) {
                        self.stats.bus_off.fetch_add(1, Ordering::Relaxed);
                        self.stats.link_ok.store(false, Ordering::Relaxed);
                        tracing::warn!("CAN bus-off");
                    }
                }
                Ok(socketcan::CanFrame::Remote(_)) => {
                    self.stats.rx_remote.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    if is_gone(&e) {
                        self.socket = None;
                    } else if !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) {
                        // ENETDOWN while the interface is down: wait a little, the socket stays.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            if Instant::now() >= deadline || self.stop.load(Ordering::Relaxed) {
                return;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use socketcan::Frame as _;

    #[test]
    fn a_stale_status_says_unavailable_and_frame_lost_but_never_undoes_off() {
        let standby = AebStatus {
            aeb_mode: Mode::Standby as u8,
            ..Default::default()
        };
        let fresh = outgoing_status(standby, 0, true, false);
        assert_eq!((fresh.aeb_mode, fresh.aeb_fault_frame_lost), (1, 0));
        let stale = outgoing_status(standby, 0, true, true);
        assert_eq!(
            (stale.aeb_mode, stale.aeb_fault_frame_lost),
            (Mode::Unavailable as u8, 1)
        );
        let off = AebStatus {
            aeb_mode: Mode::Off as u8,
            ..Default::default()
        };
        assert_eq!(outgoing_status(off, 0, true, true).aeb_mode, 0);
        // The thread's own knowledge: errors (saturating at 15) and the bus fault.
        let down = outgoing_status(standby, 40, false, false);
        assert_eq!((down.aeb_can_errors, down.aeb_fault_can_bus), (15, 1));
    }

    #[test]
    fn both_id_widths_cross_the_socket_boundary() {
        let standard = CanFrame {
            id: 0x0A0,
            len: 2,
            data: [1, 2, 0, 0, 0, 0, 0, 0],
        };
        let extended = CanFrame {
            id: 0x0A0 | CanFrame::EFF_FLAG,
            ..standard
        };
        for ours in [standard, extended] {
            let socketcan::CanFrame::Data(theirs) = to_socketcan(&ours).unwrap() else {
                panic!("not a data frame");
            };
            assert_eq!(theirs.is_extended(), ours.is_extended());
            assert_eq!(theirs.raw_id(), 0x0A0);
            assert_eq!(from_socketcan(&theirs), ours);
        }
        // A standard id above 11 bits is not truncated onto another id: it is not sent.
        assert!(to_socketcan(&CanFrame {
            id: 0x10A0,
            ..standard
        })
        .is_none());
    }
}
