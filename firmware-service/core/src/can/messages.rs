//! The daemon's CAN output, encoded by the code generated from the DBC
//! ([`firmware-service/can/adas.dbc`](../../../can/adas.dbc), see [`super::dbc`]) and protected
//! AUTOSAR E2E Profile 1 style ([`super::e2e`]: 4-bit alive counter 0–14 in bits 48–51, CRC-8
//! SAE J1850 — polynomial 0x1D, init 0xFF, final XOR 0xFF — over the 16-bit Data ID = CAN id, low
//! byte first, and bytes 0–6, in byte 7). Full table: `docs/CAN.md`.
//!
//! | id    | name        | content |
//! |-------|-------------|---------|
//! | 0x120 | AEB_Warning | stage (0 none, 1 FCW, 2 partial, 3 full braking), inhibit reason ([`InhibitReason::code`](crate::aeb::InhibitReason::code)), class of the threat, distance 0.01 m (0xFFFF none), TTC 0.05 s (0xFF none or ≥ 12.75 s), requested deceleration 0.05 m/s², lateral offset 0.05 m, brake-request flag |
//! | 0x121 | AEB_Status  | mode, inhibit reason, fault bits, fps 0.1, latency 0.1 ms, CAN error count |

use super::dbc::{AebStatus, AebWarning};
use super::e2e::Protector;
use crate::aeb::decider::Decision;
use adas_plugins::manifest::RoadUser;
use adas_types::CanFrame;

pub const AEB_WARNING_ID: u32 = AebWarning::ID;
pub const AEB_STATUS_ID: u32 = AebStatus::ID;

/// Service mode in the status message (`AEB_Mode`).
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

/// Fault bits in the status message (bit i of this mask ↔ `AEB_Fault*` signal at bit 8 + i).
pub mod fault {
    /// The last frame could not be read or decoded.
    pub const FRAME_LOST: u8 = 1 << 0;
    /// The detector failed on the last frame.
    pub const DETECTOR: u8 = 1 << 1;
    /// The last frame does not match the calibration (size) or projected nowhere.
    pub const CALIBRATION: u8 = 1 << 2;
    /// The ego input (speed, driver) is missing, stale or invalid: the decider is inhibited.
    pub const EGO: u8 = 1 << 3;
    /// CAN transmit errors (interface down, bus-off); set by the SocketCAN link.
    pub const CAN_BUS: u8 = 1 << 4;
    /// The camera is gone (reconnecting).
    pub const CAMERA: u8 = 1 << 5;
    /// An output (CAN log, decision log, pictures, recording) could not be written on the last
    /// frame; decisions are unaffected and the output is retried.
    pub const OUTPUT: u8 = 1 << 6;
}

/// What the status message reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Status {
    pub mode: Mode,
    pub faults: u8,
    pub fps: f64,
    pub latency_ms: f64,
}

impl Status {
    /// A frame that produced `decision`: braking over warning over standby, and unavailable
    /// (with the ego fault) while the decider is inhibited.
    pub fn of_decision(decision: &Decision, fps: f64, latency_ms: f64) -> Status {
        let inhibited = decision.inhibit.is_some();
        let mode = if inhibited {
            Mode::Unavailable
        } else if decision.stage.is_braking() {
            Mode::Braking
        } else if decision.warning() {
            Mode::Warning
        } else {
            Mode::Standby
        };
        Status {
            mode,
            faults: if inhibited { fault::EGO } else { 0 },
            fps,
            latency_ms,
        }
    }

    /// A frame that produced no decision, for the reasons in `faults` ([`fault`] bits).
    pub fn unavailable(faults: u8, fps: f64, latency_ms: f64) -> Status {
        Status {
            mode: Mode::Unavailable,
            faults,
            fps,
            latency_ms,
        }
    }

    /// The service is going off.
    pub fn off() -> Status {
        Status {
            mode: Mode::Off,
            faults: 0,
            fps: 0.0,
            latency_ms: 0.0,
        }
    }
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

/// The `AEB_Warning` content of a decision (no counter/CRC yet).
pub fn warning_message(decision: &Decision) -> AebWarning {
    let (distance, ttc, lateral, class) = match decision.threat {
        // Real distances stay below the "none" value 0xFFFF.
        Some(t) => (
            if t.distance_m.is_nan() {
                f64::INFINITY
            } else {
                t.distance_m.min(655.34)
            },
            t.ttc_s,
            if t.lateral_m.is_nan() {
                0.0
            } else {
                t.lateral_m
            },
            class_code(t.class) & 0x07,
        ),
        None => (f64::INFINITY, f64::INFINITY, 0.0, 0),
    };
    let decel = if decision.brake_request_mps2.is_nan() {
        0.0
    } else {
        decision.brake_request_mps2
    };
    AebWarning {
        aeb_stage: decision.stage.code() & 0x03,
        aeb_inhibit_reason: decision.inhibit.map_or(0, |r| r.code() & 0x07),
        aeb_target_class: class,
        aeb_distance: distance,
        aeb_ttc: ttc,
        aeb_brake_decel: decel,
        aeb_lateral_offset: lateral,
        aeb_warning_counter: 0,
        aeb_brake_request: u8::from(decision.stage.is_braking() && decel > 0.0),
        aeb_warning_crc: 0,
    }
}

/// The `AEB_Status` content (no counter/CRC yet); `inhibit` is [`InhibitReason::code`](crate::aeb::InhibitReason::code) or 0.
pub fn status_message(status: &Status, inhibit: u8) -> AebStatus {
    let bit = |b: u8| u8::from(status.faults & b != 0);
    AebStatus {
        aeb_mode: status.mode as u8,
        aeb_status_inhibit: inhibit & 0x0F,
        aeb_fault_frame_lost: bit(fault::FRAME_LOST),
        aeb_fault_detector: bit(fault::DETECTOR),
        aeb_fault_calibration: bit(fault::CALIBRATION),
        aeb_fault_ego: bit(fault::EGO),
        aeb_fault_can_bus: bit(fault::CAN_BUS),
        aeb_fault_camera: bit(fault::CAMERA),
        aeb_fault_output: bit(fault::OUTPUT),
        aeb_fps: status.fps,
        aeb_latency: status.latency_ms,
        aeb_status_counter: 0,
        aeb_can_errors: 0,
        aeb_status_crc: 0,
    }
}

/// Encodes messages and keeps their alive counters (for the candump log; the SocketCAN link
/// keeps its own counters).
#[derive(Debug, Default)]
pub struct Encoder {
    warning_counter: Protector,
    status_counter: Protector,
    /// The inhibit reason of the last decision, repeated in the status message.
    last_inhibit: u8,
}

impl Encoder {
    pub fn warning(&mut self, decision: &Decision) -> CanFrame {
        self.last_inhibit = decision.inhibit.map_or(0, |r| r.code());
        let mut f = warning_message(decision).encode();
        self.warning_counter.protect(&mut f, AebWarning::E2E);
        f
    }

    /// The status frame; the inhibit reason is the last decision's (0 once a frame was lost).
    pub fn status(&mut self, status: &Status) -> CanFrame {
        let inhibit = if status.mode == Mode::Off {
            0
        } else {
            self.last_inhibit
        };
        let mut f = status_message(status, inhibit).encode();
        self.status_counter.protect(&mut f, AebStatus::E2E);
        f
    }
}

/// CRC-8 SAE J1850 over the 16-bit data id (low byte first) and the payload.
pub fn crc8(id: u32, payload: &[u8]) -> u8 {
    super::e2e::crc8((id & 0xFFFF) as u16, payload)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::aeb::decider::{Stage, Threat};
    use crate::aeb::InhibitReason;

    #[test]
    fn status_follows_the_decision_and_the_faults() {
        let at = |stage| Status::of_decision(&Decision::for_test(0, stage, None), 20.0, 5.0);
        assert_eq!(at(Stage::None).mode, Mode::Standby);
        assert_eq!(at(Stage::Fcw).mode, Mode::Warning);
        assert_eq!(at(Stage::PartialBrake).mode, Mode::Braking);
        assert_eq!(at(Stage::FullBrake).mode, Mode::Braking);
        assert_eq!(
            (at(Stage::FullBrake).fps, at(Stage::FullBrake).latency_ms),
            (20.0, 5.0)
        );
        assert_eq!(at(Stage::Fcw).faults, 0);
        // Inhibited: unavailable with the ego fault, whatever the stage says.
        let mut d = Decision::for_test(0, Stage::FullBrake, None);
        d.inhibit = Some(InhibitReason::EgoStale);
        let s = Status::of_decision(&d, 20.0, 5.0);
        assert_eq!((s.mode, s.faults), (Mode::Unavailable, fault::EGO));
        let lost = Status::unavailable(fault::FRAME_LOST | fault::CAMERA, 0.0, 0.0);
        assert_eq!(lost.mode, Mode::Unavailable);
        assert_eq!(lost.faults, fault::FRAME_LOST | fault::CAMERA);
        assert_eq!(Status::off().mode, Mode::Off);
    }

    #[test]
    fn crc_matches_the_published_check_value() {
        // CRC-8/SAE-J1850 check value for "123456789" is 0x4B.
        assert_eq!(
            crc::Crc::<u8>::new(&crc::CRC_8_SAE_J1850).checksum(b"123456789"),
            0x4B
        );
    }

    #[test]
    fn warning_encodes_distance_lateral_class_counter_and_crc() {
        let threat = Threat {
            track_id: 7,
            detection: Some(0),
            distance_m: 12.345,
            lateral_m: -0.5,
            class: RoadUser::Pedestrian,
            closing_speed_mps: 10.0,
            ttc_s: 1.234,
            required_decel_mps2: 4.2,
        };
        let mut decision = Decision::for_test(0, Stage::PartialBrake, Some(threat));
        let mut enc = Encoder::default();
        let f = enc.warning(&decision);
        assert_eq!(f.id, 0x120);
        assert_eq!(f.data[0], 2 | (1 << 5), "stage 2, no inhibit, class 1");
        assert_eq!(u16::from_le_bytes([f.data[1], f.data[2]]), 1235);
        assert_eq!(f.data[3], 25, "TTC 1.234 s in 0.05 s");
        assert_eq!(f.data[4], 80, "4 m/s² in 0.05 m/s²");
        assert_eq!(f.data[5] as i8, -10, "−0.5 m in 0.05 m");
        assert_eq!(f.data[6], 0x10, "counter 0, brake-request bit 52 set");
        assert_eq!(f.data[7], crc8(0x120, &f.data[..7]));
        for expected in 1..15 {
            assert_eq!(enc.warning(&decision).data[6] & 0x0F, expected);
        }
        assert_eq!(
            enc.warning(&decision).data[6] & 0x0F,
            0,
            "counter wraps after 14"
        );

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

    /// The DBC's value tables name the codes this module and the decider send.
    #[test]
    fn the_dbc_value_tables_match_the_codes_sent() {
        use crate::aeb::decider::Stage;
        use crate::can::dbc::SignalSpec;
        let table = |signals: &'static [SignalSpec], name: &str| {
            signals.iter().find(|s| s.name == name).unwrap()
        };
        let stage = table(AebWarning::SIGNALS, "AEB_Stage");
        for (s, label) in [
            (Stage::None, "None"),
            (Stage::Fcw, "FCW"),
            (Stage::PartialBrake, "PartialBrake"),
            (Stage::FullBrake, "FullBrake"),
        ] {
            assert_eq!(stage.label(i64::from(s.code())), Some(label));
        }
        let mode = table(AebStatus::SIGNALS, "AEB_Mode");
        for (m, label) in [
            (Mode::Off, "Off"),
            (Mode::Standby, "Standby"),
            (Mode::Warning, "Warning"),
            (Mode::Unavailable, "Unavailable"),
            (Mode::Braking, "Braking"),
        ] {
            assert_eq!(mode.label(m as i64), Some(label));
        }
        for name in ["AEB_InhibitReason", "AEB_StatusInhibit"] {
            let signals = if name == "AEB_InhibitReason" {
                AebWarning::SIGNALS
            } else {
                AebStatus::SIGNALS
            };
            let inhibit = table(signals, name);
            assert_eq!(inhibit.label(0), Some("None"));
            for (r, label) in [
                (InhibitReason::NoEgo, "NoEgo"),
                (InhibitReason::EgoInvalid, "EgoInvalid"),
                (InhibitReason::EgoStale, "EgoStale"),
                (InhibitReason::EgoOutOfRange, "EgoOutOfRange"),
                (InhibitReason::TimeWentBack, "TimeWentBack"),
            ] {
                assert_eq!(inhibit.label(i64::from(r.code())), Some(label), "{name}");
            }
            assert_eq!(inhibit.values.len(), 6, "{name}: one label per code");
        }
        let class = table(AebWarning::SIGNALS, "AEB_TargetClass");
        for c in RoadUser::ALL {
            let expected = match c {
                RoadUser::Ignored => "None",
                RoadUser::Pedestrian => "Pedestrian",
                RoadUser::Cyclist => "Cyclist",
                RoadUser::Car => "Car",
                RoadUser::TruckBus => "TruckBus",
                RoadUser::Motorcycle => "Motorcycle",
                RoadUser::Other => "Other",
            };
            assert_eq!(class.label(i64::from(class_code(c))), Some(expected));
        }
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
        assert_eq!(u16::from_le_bytes([f.data[2], f.data[3]]), u16::MAX);
        assert_eq!(u16::from_le_bytes([f.data[4], f.data[5]]), u16::MAX);
    }

    #[test]
    fn frames_decode_with_the_generated_decoder_and_pass_e2e() {
        use crate::can::dbc::AebStatus;
        use crate::can::e2e::crc_ok;
        let mut enc = Encoder::default();
        let f = enc.status(&Status {
            mode: Mode::Warning,
            faults: fault::EGO | fault::FRAME_LOST,
            fps: 29.97,
            latency_ms: 41.25,
        });
        let s = AebStatus::decode(f.payload()).unwrap();
        assert_eq!(
            (s.aeb_mode, s.aeb_fault_ego, s.aeb_fault_frame_lost),
            (2, 1, 1)
        );
        assert!((s.aeb_fps - 30.0).abs() < 1e-9);
        assert!(crc_ok(&f, AebStatus::E2E.unwrap()));
    }
}
