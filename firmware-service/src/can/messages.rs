//! Provisional message layout (the DBC-defined set replaces it). Little-endian signals; every
//! message ends with a 4-bit alive counter and a CRC-8 (SAE J1850 polynomial 0x1D, init 0xFF,
//! final XOR 0xFF, as AUTOSAR's `Crc_CalculateCRC8`) over a 16-bit data id and bytes 0–6.
//!
//! | id    | name        | bytes                                                               |
//! |-------|-------------|---------------------------------------------------------------------|
//! | 0x120 | AEB_Warning | 0: bits 0–1 stage (0 none, 1 FCW, 2 partial, 3 full braking), bits 2–4 inhibit reason (0 none, see [`InhibitReason::code`]), bits 5–7 class of the threat; 1–2: distance u16 0.01 m (0xFFFF none); 3: TTC u8 0.05 s (0xFF none or ≥ 12.7 s); 4: requested deceleration u8 0.05 m/s²; 5: lateral offset i8 0.05 m; 6: counter; 7: CRC |
//! | 0x121 | AEB_Status  | 0: mode; 1: fault bits; 2–3: fps u16 0.1; 4–5: latency u16 0.1 ms; 6: counter; 7: CRC |

use super::CanFrame;
use crate::aeb::decider::Decision;
use adas_plugins::manifest::RoadUser;

pub const AEB_WARNING_ID: u32 = 0x120;
pub const AEB_STATUS_ID: u32 = 0x121;

const CRC8: crc::Crc<u8> = crc::Crc::<u8>::new(&crc::CRC_8_SAE_J1850);

/// Service mode in the status message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Off = 0,
    /// Running, nothing in the corridor.
    Standby = 1,
    /// Running, warning active.
    Warning = 2,
    /// Cannot vouch for its view; see the fault bits.
    Unavailable = 3,
    /// Running, braking requested (partial or full).
    Braking = 4,
}

/// Fault bits in the status message.
pub mod fault {
    /// The last frame could not be read or decoded.
    pub const FRAME_LOST: u8 = 1 << 0;
    /// The detector failed on the last frame.
    pub const DETECTOR: u8 = 1 << 1;
    /// The last frame does not match the calibration (size) or projected nowhere.
    pub const CALIBRATION: u8 = 1 << 2;
    /// The ego input (speed, driver) is missing, stale or invalid: the decider is inhibited.
    pub const EGO: u8 = 1 << 3;
}

/// What the status message reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    pub mode: Mode,
    pub faults: u8,
    pub fps: f64,
    pub latency_ms: f64,
}

pub fn class_code(class: RoadUser) -> u8 {
    match class {
        RoadUser::Pedestrian => 1,
        RoadUser::Cyclist => 2,
        RoadUser::Car => 3,
        RoadUser::TruckBus => 4,
        RoadUser::Motorcycle => 5,
        RoadUser::Other => 6,
        RoadUser::Ignored => 0,
    }
}

/// Encodes messages and keeps their alive counters.
#[derive(Debug, Default)]
pub struct Encoder {
    warning_counter: u8,
    status_counter: u8,
}

impl Encoder {
    pub fn warning(&mut self, decision: &Decision) -> CanFrame {
        let mut d = [0u8; 8];
        let inhibit = decision.inhibit.map_or(0, |r| r.code() & 0x07);
        let (distance, ttc, lateral, class) = match decision.threat {
            Some(t) => (
                scaled_u16(t.distance_m, 100.0),
                scaled_u8_or_none(t.ttc_s, 20.0),
                scaled_i8(t.lateral_m, 20.0),
                class_code(t.class) & 0x07,
            ),
            None => (u16::MAX, u8::MAX, 0, 0),
        };
        d[0] = (decision.stage.code() & 0x03) | (inhibit << 2) | (class << 5);
        d[1..3].copy_from_slice(&distance.to_le_bytes());
        d[3] = ttc;
        d[4] = scaled_u8_or_none(decision.brake_request_mps2, 20.0).min(u8::MAX - 1);
        d[5] = lateral.to_le_bytes()[0];
        seal(AEB_WARNING_ID, &mut d, &mut self.warning_counter)
    }

    pub fn status(&mut self, status: &Status) -> CanFrame {
        let mut d = [0u8; 8];
        d[0] = status.mode as u8;
        d[1] = status.faults;
        d[2..4].copy_from_slice(&scaled_u16(status.fps, 10.0).to_le_bytes());
        d[4..6].copy_from_slice(&scaled_u16(status.latency_ms, 10.0).to_le_bytes());
        seal(AEB_STATUS_ID, &mut d, &mut self.status_counter)
    }
}

/// Writes the counter (0–14, wrapping, as E2E profile 1) and the CRC into bytes 6 and 7.
fn seal(id: u32, d: &mut [u8; 8], counter: &mut u8) -> CanFrame {
    d[6] = *counter;
    *counter = (*counter + 1) % 15;
    d[7] = crc8(id, &d[..7]);
    CanFrame {
        id,
        len: 8,
        data: *d,
    }
}

/// CRC-8 SAE J1850 over the 16-bit data id (low byte first) and the payload.
pub fn crc8(id: u32, payload: &[u8]) -> u8 {
    let mut digest = CRC8.digest();
    digest.update(&[(id & 0xFF) as u8, ((id >> 8) & 0xFF) as u8]);
    digest.update(payload);
    digest.finalize()
}

fn scaled_u16(value: f64, scale: f64) -> u16 {
    let v = (value * scale).round();
    if v.is_nan() {
        u16::MAX
    } else {
        v.clamp(0.0, f64::from(u16::MAX - 1)) as u16
    }
}

/// `u8::MAX` for "none": NaN, infinite or beyond the range.
fn scaled_u8_or_none(value: f64, scale: f64) -> u8 {
    let v = (value * scale).round();
    if v.is_nan() || v >= f64::from(u8::MAX) {
        u8::MAX
    } else {
        v.max(0.0) as u8
    }
}

fn scaled_i8(value: f64, scale: f64) -> i8 {
    let v = (value * scale).round();
    if v.is_nan() {
        0
    } else {
        v.clamp(f64::from(i8::MIN), f64::from(i8::MAX)) as i8
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::aeb::decider::{Corridor, Stage, Threat};
    use crate::aeb::InhibitReason;

    #[test]
    fn crc_matches_the_published_check_value() {
        // CRC-8/SAE-J1850 check value for "123456789" is 0x4B.
        assert_eq!(CRC8.checksum(b"123456789"), 0x4B);
    }

    #[test]
    fn warning_encodes_distance_lateral_class_counter_and_crc() {
        let mut decision = Decision {
            t_ns: 0,
            stage: Stage::PartialBrake,
            demand: Stage::PartialBrake,
            hold_demand: Stage::PartialBrake,
            brake_request_mps2: 4.0,
            inhibit: None,
            suppression: None,
            corridor: Corridor {
                half_width_m: 1.2,
                length_m: 80.0,
                curvature_per_m: 0.0,
            },
            threat: Some(Threat {
                track_id: 7,
                detection: Some(0),
                distance_m: 12.345,
                lateral_m: -0.5,
                class: RoadUser::Pedestrian,
                closing_speed_mps: 10.0,
                ttc_s: 1.234,
                required_decel_mps2: 4.2,
            }),
        };
        let mut enc = Encoder::default();
        let f = enc.warning(&decision);
        assert_eq!(f.id, 0x120);
        assert_eq!(f.data[0], 2 | (1 << 5), "stage 2, no inhibit, class 1");
        assert_eq!(u16::from_le_bytes([f.data[1], f.data[2]]), 1235);
        assert_eq!(f.data[3], 25, "TTC 1.234 s in 0.05 s");
        assert_eq!(f.data[4], 80, "4 m/s² in 0.05 m/s²");
        assert_eq!(f.data[5] as i8, -10, "−0.5 m in 0.05 m");
        assert_eq!(f.data[6], 0);
        assert_eq!(f.data[7], crc8(0x120, &f.data[..7]));
        for expected in 1..15 {
            assert_eq!(enc.warning(&decision).data[6], expected);
        }
        assert_eq!(enc.warning(&decision).data[6], 0, "counter wraps after 14");

        // No threat, inhibited: distance and TTC "none", the reason in bits 2–4.
        decision.threat = None;
        decision.stage = Stage::None;
        decision.brake_request_mps2 = 0.0;
        decision.inhibit = Some(InhibitReason::EgoStale);
        let f = enc.warning(&decision);
        assert_eq!(f.data[0], 3 << 2);
        assert_eq!(u16::from_le_bytes([f.data[1], f.data[2]]), u16::MAX);
        assert_eq!((f.data[3], f.data[4], f.data[5]), (u8::MAX, 0, 0));
        // An infinite TTC is "none" too.
        decision.threat = Some(Threat {
            track_id: 1,
            detection: None,
            distance_m: 30.0,
            lateral_m: 0.0,
            class: RoadUser::Car,
            closing_speed_mps: 0.0,
            ttc_s: f64::INFINITY,
            required_decel_mps2: 0.0,
        });
        assert_eq!(enc.warning(&decision).data[3], u8::MAX);
    }

    #[test]
    fn status_saturates_instead_of_wrapping() {
        let f = Encoder::default().status(&Status {
            mode: Mode::Unavailable,
            faults: fault::DETECTOR,
            fps: 1e9,
            latency_ms: f64::NAN,
        });
        assert_eq!(f.data[0], 3);
        assert_eq!(f.data[1], 2);
        assert_eq!(u16::from_le_bytes([f.data[2], f.data[3]]), u16::MAX - 1);
        assert_eq!(u16::from_le_bytes([f.data[4], f.data[5]]), u16::MAX);
    }
}
