//! Writes the ego vehicle's CAN input as a candump log (stdout): VehicleSpeed, DriverInput and
//! YawRate every 20 ms (their DBC cycle), E2E-protected, constant speed, no pedal, no override,
//! yaw rate 0 — what a car driving straight at a constant speed sends. Made
//! samples/udacity/ego.can.log (samples/udacity/PROVENANCE.md):
//!
//!     cargo run -p adasd --example ego_can_log -- --speed-kph 119 --seconds 9 > samples/udacity/ego.can.log

use adas_core::can::dbc::{DriverInput, VehicleSpeed, YawRate};
use adas_core::can::e2e::Protector;
use adas_io::can::candump::format_line;

const USAGE: &str = "usage: ego_can_log --speed-kph V --seconds S [--interface can0]";
/// The log's first frame time: 2023-11-14 22:13:20 UTC, as in the other sample logs.
const START_NS: u64 = 1_700_000_000_000_000_000;
const PERIOD_NS: u64 = 20_000_000;

fn main() -> anyhow::Result<()> {
    let mut speed_kph = None;
    let mut seconds = None;
    let mut interface = "can0".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some(value) = args.next() else {
            anyhow::bail!("{arg} needs a value\n{USAGE}");
        };
        match arg.as_str() {
            "--speed-kph" => speed_kph = Some(value.parse::<f64>()?),
            "--seconds" => seconds = Some(value.parse::<f64>()?),
            "--interface" => interface = value,
            _ => anyhow::bail!("unknown argument {arg}\n{USAGE}"),
        }
    }
    let (Some(speed_kph), Some(seconds)) = (speed_kph, seconds) else {
        anyhow::bail!("{USAGE}");
    };
    if !((0.0..=320.0).contains(&speed_kph) && seconds > 0.0 && seconds < 3600.0) {
        anyhow::bail!("--speed-kph must be 0..=320 and --seconds 0..3600\n{USAGE}");
    }
    let mut out = format!(
        "# ego input: {speed_kph} km/h constant, no pedal, yaw rate 0; {seconds} s every 20 ms\n"
    );
    let (mut p_speed, mut p_driver, mut p_yaw) = (
        Protector::default(),
        Protector::default(),
        Protector::default(),
    );
    let cycles = (seconds * 1000.0 / 20.0).ceil() as u64;
    for i in 0..=cycles {
        let t_ns = START_NS + i * PERIOD_NS;
        let mut speed = VehicleSpeed {
            vs_speed: speed_kph,
            vs_speed_valid: 1,
            ..Default::default()
        }
        .encode();
        p_speed.protect(&mut speed, VehicleSpeed::E2E);
        let mut driver = DriverInput::default().encode();
        p_driver.protect(&mut driver, DriverInput::E2E);
        let mut yaw = YawRate {
            yr_yaw_rate_valid: 1,
            ..Default::default()
        }
        .encode();
        p_yaw.protect(&mut yaw, YawRate::E2E);
        for frame in [&speed, &driver, &yaw] {
            out += &format_line(t_ns, &interface, frame);
            out.push('\n');
        }
    }
    print!("{out}");
    Ok(())
}
