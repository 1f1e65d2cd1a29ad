//! `adas-canio`: the daemon's CAN side alone — SocketCAN link, input supervision and the AEB status
//! heartbeat — without camera or detector. For bench and VM tests of the bus (can-utils peers) and
//! for checking a vehicle's CAN inputs before the camera is mounted.
//!
//! ```text
//! adas-canio --interface vcan0 [--seconds N]
//! ```
//! Sends `AEB_Status` every 100 ms: mode Standby while the ego speed input is valid, Unavailable
//! with the inhibit reason otherwise; prints the supervision counters at exit. SIGTERM/SIGINT:
//! a last `AEB_Status` with mode Off, then exit 0.

use adas_core::can::dbc::AebStatus;
use adas_core::can::supervision::{EgoInput, EgoInputParams};
use adas_io::can::socketcan::{CanBus, CanBusConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ADASD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut interface = "vcan0".to_string();
    let mut seconds: Option<f64> = None;
    let mut i = 0;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--interface", Some(v)) => interface = v.clone(),
            ("--seconds", Some(v)) => seconds = Some(v.parse()?),
            _ => anyhow::bail!("usage: adas-canio --interface IFACE [--seconds N]"),
        }
        i += 2;
    }
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;

    let origin = Instant::now();
    let bus = CanBus::start(
        CanBusConfig {
            interface: interface.clone(),
            status_period_ms: 100,
            warning_period_ms: 100,
            reconnect_ms: 200,
            stale_after_ms: 1000,
        },
        origin,
    )?;
    let mut ego = EgoInput::new(EgoInputParams::default());
    let mut notifier = adas_io::notify::Notifier::from_env();
    notifier.ready(&format!("CAN on {interface}"));
    let deadline = seconds.map(|s| origin + Duration::from_secs_f64(s));
    let mut last_inhibit = None;
    while !stop.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
        for (t, f) in bus.drain_received() {
            ego.on_frame(t, &f);
        }
        let now = bus.now_ns();
        let inhibit = ego.inhibit(now);
        if inhibit != last_inhibit {
            eprintln!(
                "t={:.3}s ego input: {}",
                now as f64 / 1e9,
                inhibit.map_or("valid", |r| r.as_str())
            );
            last_inhibit = inhibit;
        }
        bus.set_status(
            AebStatus {
                aeb_mode: if inhibit.is_some() { 3 } else { 1 },
                aeb_status_inhibit: inhibit.map_or(0, |r| r.code()),
                aeb_fault_ego: u8::from(inhibit.is_some()),
                ..Default::default()
            }
            .encode(),
        );
        notifier.progress();
        std::thread::sleep(Duration::from_millis(5));
    }
    notifier.stopping();
    let s = &ego.speed.counters;
    let st = bus.stats();
    eprintln!(
        "speed: frames {} accepted {} crc_errors {} sequence_errors {} dlc_errors {} range_errors {} timeouts {}",
        s.frames, s.accepted, s.crc_errors, s.sequence_errors, s.dlc_errors, s.range_errors, s.timeouts
    );
    eprintln!(
        "can: tx {} tx_errors {} dropped {} rx {} reconnects {} rx_remote {} other_ids {}",
        st.tx_frames.load(Ordering::Relaxed),
        st.tx_errors.load(Ordering::Relaxed),
        st.tx_dropped.load(Ordering::Relaxed),
        st.rx_frames.load(Ordering::Relaxed),
        st.reconnects.load(Ordering::Relaxed),
        st.rx_remote.load(Ordering::Relaxed),
        ego.other_frames
    );
    bus.shutdown(AebStatus::default().encode());
    Ok(())
}
