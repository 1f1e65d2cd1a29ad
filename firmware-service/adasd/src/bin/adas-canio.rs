//! `adas-canio`: the daemon's CAN side alone — SocketCAN link, input supervision and the AEB status
//! heartbeat — without camera or detector. For bench and VM tests of the bus (can-utils peers) and
//! for checking a vehicle's CAN inputs before the camera is mounted.
//!
//! ```text
//! adas-canio [--interface vcan0] [--seconds N] [--device-timeout S] [-v|-q]
//! ```
//! Sends `AEB_Status` every 100 ms: mode Standby while the ego speed input is valid, Unavailable
//! with the inhibit reason otherwise; prints the supervision counters at exit. SIGTERM/SIGINT:
//! a last `AEB_Status` with mode Off, then exit 0. An interface that cannot be opened is retried
//! every 200 ms; one that never opens within `--device-timeout` ends the run with exit status 4.
//! Once open, a vanished interface is retried for as long as the run lasts (as in the daemon).

use adas_core::aeb::InhibitReason;
use adas_core::can::dbc::AebStatus;
use adas_core::can::supervision::{EgoInput, EgoInputParams};
use adas_io::can::socketcan::{CanBus, CanBusConfig};
use adas_types::CanFrame;
use clap::Parser;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a missing interface is tried again, ms.
const RECONNECT_MS: u64 = 200;

#[derive(Parser)]
#[command(
    name = "adas-canio",
    version,
    about = "The daemon's CAN side alone: AEB_Status heartbeat every 100 ms and the supervised \
             ego speed input, on a SocketCAN interface",
    after_help = "Exit status: 0 ran until the end or a signal, 1 failure, 2 usage error, 4 the \
                  interface could not be opened within --device-timeout. Logs go to stderr; \
                  ADASD_LOG=info overrides -v/-q. docs/CLI.md has the details.",
    help_expected = true
)]
struct Cli {
    #[command(flatten)]
    verbosity: adas_cli::Verbosity,
    /// SocketCAN interface (can0, vcan0, …).
    #[arg(long, default_value = "vcan0")]
    interface: String,
    /// Stop after this many seconds (default: run until SIGTERM/SIGINT).
    #[arg(long, value_parser = adas_cli::seconds)]
    seconds: Option<f64>,
    /// Give up with exit status 4 when the interface has not opened this many seconds after
    /// the start (it is tried every 200 ms until then).
    #[arg(long, default_value_t = 10.0, value_parser = adas_cli::seconds)]
    device_timeout: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    adas_cli::helper_main("adas-canio", &cli.verbosity, || run(&cli))
}

/// The status for the ego input's state: standby while it is valid, else unavailable with the
/// ego fault and the supervision's reason.
fn status(inhibit: Option<InhibitReason>) -> CanFrame {
    AebStatus {
        aeb_mode: if inhibit.is_some() { 3 } else { 1 },
        aeb_status_inhibit: inhibit.map_or(0, |r| r.code()),
        aeb_fault_ego: u8::from(inhibit.is_some()),
        ..Default::default()
    }
    .encode()
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let interface = cli.interface.clone();
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;

    let origin = Instant::now();
    let bus = CanBus::start(
        CanBusConfig {
            interface: interface.clone(),
            status_period_ms: 100,
            warning_period_ms: 100,
            reconnect_ms: RECONNECT_MS,
            stale_after_ms: 1000,
        },
        origin,
        status(Some(InhibitReason::NoEgo)),
    )?;
    let mut ego = EgoInput::new(EgoInputParams::default());
    let mut notifier = adas_io::notify::Notifier::from_env();
    notifier.ready(&format!("CAN on {interface}"));
    let deadline = cli.seconds.map(|s| origin + Duration::from_secs_f64(s));
    let give_up = origin + Duration::from_secs_f64(cli.device_timeout);
    let mut last_inhibit = None;
    let mut opened = false;
    while !stop.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
        // The CAN thread counts every successful open of the socket.
        opened |= bus.stats().reconnects.load(Ordering::Relaxed) > 0;
        if !opened && Instant::now() >= give_up {
            break;
        }
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
        bus.set_status(status(inhibit));
        notifier.progress();
        std::thread::sleep(Duration::from_millis(5));
    }
    notifier.stopping();
    print_counters(&bus, &ego);
    bus.shutdown(AebStatus::default().encode());
    if !opened {
        return Err(adas_cli::NoDevice(format!(
            "CAN interface `{interface}` could not be opened in {:.1} s (tried every \
             {RECONNECT_MS} ms; the log above says why). Check that it exists: `ip link show \
             {interface}`; create or bring it up: {}",
            origin.elapsed().as_secs_f64(),
            adas_io::can::bring_up_commands(&interface)
        ))
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// The supervision's and the CAN thread's counters (the VM tests read them).
fn print_counters(bus: &CanBus, ego: &EgoInput) {
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
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_argument_has_help_and_the_parser_is_consistent() {
        // `help_expected`: clap's debug assertions refuse an argument without help text.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
