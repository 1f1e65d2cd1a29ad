//! CAN messages generated at build time from [`firmware-service/can/adas.dbc`](../../../can/adas.dbc) by `build.rs`:
//! one struct per message with `encode` (→ [`CanFrame`]) and `decode`, its id, DLC, cycle time,
//! send type and E2E layout, and its signals as data ([`MessageSpec`], [`MESSAGES`]) for tools
//! that show any message by name (recordings, logs). The DBC is the single source of truth: the
//! generated code and the hand-written helpers below read bits the same way ([`raw_bits`]).

use adas_types::CanFrame;

/// Where the E2E alive counter and CRC sit in a message (see [`super::e2e`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E2eLayout {
    /// First bit of the 4-bit counter (little-endian bit numbering, as in the DBC).
    pub counter_start_bit: u64,
    /// Byte index of the CRC-8.
    pub crc_byte: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{message}: DLC {got}, expected {expected}")]
    Dlc {
        message: &'static str,
        expected: u8,
        got: usize,
    },
}

/// Physical value → raw integer: `round((v − offset) / factor)`, clamped to `[lo, hi]`; NaN → `hi`.
fn raw_of(value: f64, factor: f64, offset: f64, lo: f64, hi: f64) -> i64 {
    if value.is_nan() {
        return hi as i64;
    }
    ((value - offset) / factor).round().clamp(lo, hi) as i64
}

/// The raw value of the `size`-bit signal at `start` (little-endian bit numbering, as the DBC's
/// `@1`) of a frame's payload read as a little-endian `u64`; sign-extended when `signed`.
pub fn raw_bits(bits: u64, start: u32, size: u32, signed: bool) -> i64 {
    let size = size.clamp(1, 64);
    let field = (bits >> start.min(63)) & (u64::MAX >> (64 - size));
    if signed {
        let shift = 64 - size;
        ((field << shift) as i64) >> shift
    } else {
        field as i64
    }
}

/// A signal as the DBC declares it (`SG_`, its `CM_ SG_` comment and `VAL_` table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalSpec {
    pub name: &'static str,
    pub start: u32,
    pub size: u32,
    pub signed: bool,
    pub factor: f64,
    pub offset: f64,
    /// Decimal places of the factor and offset as written in the DBC (0.05 → 2).
    pub decimals: u32,
    pub min: f64,
    pub max: f64,
    pub unit: &'static str,
    pub comment: &'static str,
    /// `VAL_` entries, raw value → label. On an integer signal (factor 1, offset 0) they name
    /// its states; on a scaled signal they are codes without a physical value (raw 0xFFFF
    /// "NoTarget" is not 655.35 m).
    pub values: &'static [(i64, &'static str)],
}

impl SignalSpec {
    /// Factor 1 and offset 0: the raw value is the value (a state, a counter, a flag).
    pub fn is_integer(&self) -> bool {
        self.factor == 1.0 && self.offset == 0.0
    }

    pub fn label(&self, raw: i64) -> Option<&'static str> {
        self.values
            .iter()
            .find(|(code, _)| *code == raw)
            .map(|(_, label)| *label)
    }

    /// The physical value of `raw`; `None` for a scaled signal's "no value" code. Computed in
    /// units of the DBC's last decimal place, so 1235 × 0.01 reads 12.35, not 12.350000000000001
    /// (the typed `decode`, which the decisions use, multiplies as `raw × factor + offset`).
    pub fn physical(&self, raw: i64) -> Option<f64> {
        if self.is_integer() {
            return Some(raw as f64);
        }
        if self.label(raw).is_some() {
            return None;
        }
        let scale = 10f64.powi(self.decimals.min(15) as i32);
        Some(((raw as f64) * (self.factor * scale).round() + (self.offset * scale).round()) / scale)
    }
}

/// A message as the DBC declares it; `<Message>::SPEC` of each generated struct.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MessageSpec {
    pub name: &'static str,
    pub id: u32,
    pub dlc: u8,
    /// The sending node (`BO_ … NODE`): `ADAS` for this service's messages.
    pub transmitter: &'static str,
    pub cycle_time_ms: u64,
    pub send_type: &'static str,
    pub comment: &'static str,
    pub signals: &'static [SignalSpec],
}

/// One signal of a decoded frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalValue {
    pub spec: &'static SignalSpec,
    pub raw: i64,
    /// [`SignalSpec::physical`]: `None` for a "no value" code.
    pub value: Option<f64>,
    /// The `VAL_` label of the raw value, if the DBC has one.
    pub label: Option<&'static str>,
}

impl MessageSpec {
    /// Every signal of a payload of this message, in DBC order; a wrong DLC is an error.
    pub fn decode(&self, payload: &[u8]) -> Result<Vec<SignalValue>, DecodeError> {
        if payload.len() != usize::from(self.dlc) {
            return Err(DecodeError::Dlc {
                message: self.name,
                expected: self.dlc,
                got: payload.len(),
            });
        }
        let mut b = [0u8; 8];
        for (dst, src) in b.iter_mut().zip(payload) {
            *dst = *src;
        }
        let bits = u64::from_le_bytes(b);
        Ok(self
            .signals
            .iter()
            .map(|spec| {
                let raw = raw_bits(bits, spec.start, spec.size, spec.signed);
                SignalValue {
                    spec,
                    raw,
                    value: spec.physical(raw),
                    label: spec.label(raw),
                }
            })
            .collect())
    }
}

#[allow(
    clippy::all,
    clippy::identity_op,
    clippy::unnecessary_cast,
    clippy::excessive_precision
)]
mod generated {
    use super::{raw_bits, raw_of, CanFrame, DecodeError, E2eLayout, MessageSpec, SignalSpec};
    include!(concat!(env!("OUT_DIR"), "/adas_dbc.rs"));
}

pub use generated::*;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_signal_kind() {
        let s = VehicleSpeed {
            vs_speed: 123.45,
            vs_speed_valid: 1,
            vs_long_accel: -3.2,
            vs_counter: 7,
            vs_crc: 0xAB,
        };
        let f = s.encode();
        assert_eq!((f.id, f.len), (0xA0, 8));
        assert_eq!(u16::from_le_bytes([f.data[0], f.data[1]]), 12345);
        assert_eq!(f.data[3] as i8, -32);
        assert_eq!(f.data[6] & 0x0F, 7);
        assert_eq!(f.data[7], 0xAB);
        let d = VehicleSpeed::decode(f.payload()).unwrap();
        assert!((d.vs_speed - 123.45).abs() < 1e-9);
        assert!((d.vs_long_accel + 3.2).abs() < 1e-9);
        assert_eq!((d.vs_speed_valid, d.vs_counter, d.vs_crc), (1, 7, 0xAB));
    }

    #[test]
    fn saturates_out_of_range_and_nan() {
        let w = AebWarning {
            aeb_distance: f64::INFINITY,
            aeb_ttc: f64::NAN,
            aeb_lateral_offset: -100.0,
            ..Default::default()
        };
        let f = w.encode();
        assert_eq!(u16::from_le_bytes([f.data[1], f.data[2]]), 0xFFFF);
        assert_eq!(f.data[3], 0xFF);
        assert_eq!(f.data[5] as i8, -128);
    }

    #[test]
    fn wrong_dlc_is_an_error() {
        assert!(matches!(
            AebStatus::decode(&[0; 7]),
            Err(DecodeError::Dlc { got: 7, .. })
        ));
    }

    #[test]
    fn the_signal_tables_decode_as_the_typed_decoders() {
        // xorshift: every bit pattern class, deterministic.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let p = x.to_le_bytes();
            let close = |a: Option<f64>, b: f64| {
                a.is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
            };
            let [speed, valid, accel, counter, crc] = *VehicleSpeed::SPEC.decode(&p).unwrap()
            else {
                panic!("VehicleSpeed has five signals");
            };
            let typed = VehicleSpeed::decode(&p).unwrap();
            if speed.raw == 0xFFFF {
                assert_eq!((speed.value, speed.label), (None, Some("NotAvailable")));
            } else {
                assert!(close(speed.value, typed.vs_speed), "{speed:?} {typed:?}");
            }
            assert!(
                close(accel.value, typed.vs_long_accel),
                "{accel:?} {typed:?}"
            );
            assert_eq!(valid.value, Some(f64::from(typed.vs_speed_valid)));
            assert_eq!(counter.raw, i64::from(typed.vs_counter));
            assert_eq!(crc.raw, i64::from(typed.vs_crc));

            let yaw = YawRate::SPEC.decode(&p).unwrap();
            assert!(close(
                yaw[0].value,
                YawRate::decode(&p).unwrap().yr_yaw_rate
            ));

            let w = AebWarning::decode(&p).unwrap();
            let g = AebWarning::SPEC.decode(&p).unwrap();
            let by = |name: &str| *g.iter().find(|s| s.spec.name == name).unwrap();
            assert_eq!(by("AEB_Stage").raw, i64::from(w.aeb_stage));
            assert_eq!(by("AEB_TargetClass").raw, i64::from(w.aeb_target_class));
            assert!(close(by("AEB_LateralOffset").value, w.aeb_lateral_offset));
            for (name, typed, none) in [
                ("AEB_Distance", w.aeb_distance, 0xFFFF),
                ("AEB_TTC", w.aeb_ttc, 0xFF),
            ] {
                let v = by(name);
                if v.raw == none {
                    assert_eq!(v.value, None, "{name}: a no-value code has no value");
                    assert!(v.label.is_some(), "{name}: the code is named");
                } else {
                    assert!(close(v.value, typed), "{v:?} {typed}");
                }
            }
        }
    }

    #[test]
    fn physical_values_read_as_the_dbc_writes_them() {
        let mut f = AebWarning {
            aeb_stage: 1,
            aeb_distance: 12.35,
            aeb_ttc: 1.2,
            aeb_lateral_offset: -0.35,
            ..Default::default()
        }
        .encode();
        let g = AebWarning::SPEC.decode(f.payload()).unwrap();
        let values: Vec<_> = g.iter().map(|s| (s.spec.name, s.value, s.label)).collect();
        assert!(values.contains(&("AEB_Stage", Some(1.0), Some("FCW"))));
        assert!(values.contains(&("AEB_Distance", Some(12.35), None)));
        assert!(values.contains(&("AEB_TTC", Some(1.2), None)));
        assert!(values.contains(&("AEB_LateralOffset", Some(-0.35), None)));
        f.data[1] = 0xFF;
        f.data[2] = 0xFF;
        let g = AebWarning::SPEC.decode(f.payload()).unwrap();
        assert_eq!((g[3].value, g[3].label), (None, Some("NoTarget")));
        assert!(matches!(
            AebWarning::SPEC.decode(&f.data[..7]),
            Err(DecodeError::Dlc { got: 7, .. })
        ));
        let ids: Vec<u32> = MESSAGES.iter().map(|m| m.id).collect();
        assert_eq!(ids, ALL_IDS);
    }

    #[test]
    fn every_signal_is_commented_and_the_warning_is_sent_if_active() {
        for m in MESSAGES {
            for s in m.signals {
                assert!(
                    !s.comment.is_empty(),
                    "{}.{} has no CM_ SG_",
                    m.name,
                    s.name
                );
            }
        }
        // Sent on change, and cyclically (100 ms) while AEB_Stage is not 0.
        assert_eq!(AebWarning::SEND_TYPE, "CyclicIfActiveAndSpontaneous");
        assert_eq!(AebWarning::CYCLE_TIME_MS, 100);
        for m in [
            VehicleSpeed::SPEC,
            DriverInput::SPEC,
            YawRate::SPEC,
            AebStatus::SPEC,
        ] {
            assert_eq!(m.send_type, "Cyclic", "{}", m.name);
        }
    }

    #[test]
    fn e2e_layouts_come_from_the_dbc() {
        for l in [
            VehicleSpeed::E2E,
            DriverInput::E2E,
            YawRate::E2E,
            AebWarning::E2E,
            AebStatus::E2E,
        ] {
            assert_eq!(
                l,
                Some(E2eLayout {
                    counter_start_bit: 48,
                    crc_byte: 7
                })
            );
        }
        assert_eq!(VehicleSpeed::CYCLE_TIME_MS, 20);
        assert_eq!(AebStatus::CYCLE_TIME_MS, 100);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, dead_code)]
#[path = "../../build/codegen.rs"]
mod codegen;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod codegen_tests {
    use super::codegen::generate;

    const DBC: &str = include_str!("../../../can/adas.dbc");

    #[test]
    fn the_shipped_dbc_generates() {
        assert!(generate(DBC).unwrap().contains("pub struct AebStatus"));
    }

    #[test]
    fn malformed_dbc_errors_name_the_line() {
        let syntax = DBC.replace(
            "SG_ DI_AccelPedal : 8|8@1+ (0.4,0)",
            "SG_ DI_AccelPedal : 8|8@1+ (0.4 0)",
        );
        let line = DBC
            .lines()
            .position(|l| l.contains("DI_AccelPedal :"))
            .unwrap()
            + 1;
        let err = generate(&syntax).unwrap_err();
        assert!(err.starts_with(&format!("{line}: malformed DBC")), "{err}");

        let overlap = DBC.replace("SG_ DI_AccelPedal : 8|8@1+", "SG_ DI_AccelPedal : 1|8@1+");
        let err = generate(&overlap).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "{line}: signal DriverInput.DI_AccelPedal: overlaps"
            )),
            "{err}"
        );

        let outside = DBC.replace("SG_ DI_AccelPedal : 8|8@1+", "SG_ DI_AccelPedal : 60|8@1+");
        let err = generate(&outside).unwrap_err();
        assert!(err.contains("do not fit"), "{err}");

        let motorola = DBC.replace("SG_ DI_AccelPedal : 8|8@1+", "SG_ DI_AccelPedal : 15|8@0+");
        assert!(generate(&motorola).unwrap_err().contains("little-endian"));

        let table = DBC.replace("AEB_TTC 255 \"", "AEB_TTC 256 \"");
        let err = generate(&table).unwrap_err();
        assert!(
            err.contains(
                "AEB_Warning.AEB_TTC: value table entry 256 does not fit in 8 unsigned bits"
            ),
            "{err}"
        );
    }
}
