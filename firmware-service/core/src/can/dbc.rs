//! CAN messages generated at build time from [`firmware-service/can/adas.dbc`](../../../can/adas.dbc) by `build.rs`:
//! one struct per message with `encode` (→ [`CanFrame`]) and `decode`, its id, DLC, cycle time and
//! E2E layout. The DBC is the single source of truth; nothing here is written by hand.

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

fn sign_extend(raw: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

#[allow(
    clippy::all,
    clippy::identity_op,
    clippy::unnecessary_cast,
    clippy::excessive_precision
)]
mod generated {
    use super::{raw_of, sign_extend, CanFrame, DecodeError, E2eLayout};
    include!(concat!(env!("OUT_DIR"), "/adas_dbc.rs"));
}

pub use generated::*;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
    }
}
