//! End-to-end protection of the safety-relevant messages, **AUTOSAR E2E Profile 1 style**
//! (E2E_P01, Data ID mode "both"):
//!
//! - a 4-bit alive counter 0..=14 (15 is never sent), incremented by one per sent frame, wrapping
//!   14 → 0, at the bit given by the DBC's `*_Counter` signal (bits 48..52 in every message here);
//! - a CRC-8 **SAE J1850** (polynomial 0x1D, init 0xFF, final XOR 0xFF — `Crc_CalculateCRC8` of
//!   AUTOSAR; check value over "123456789" = 0x4B) over the 16-bit Data ID (low byte, then high
//!   byte; implicit, never transmitted) followed by every payload byte except the CRC byte, stored
//!   in the DBC's `*_CRC` byte (byte 7 here). The Data ID of a message is its CAN id.
//!
//! The receiver side ([`Checker`]) follows E2E_P01's state logic: CRC wrong → error; counter
//! repeated → not new data (ignored); counter delta 1 → OK; delta 2..=`max_delta` → OK with lost
//! frames; larger jumps → wrong sequence. See [`super::supervision`] for how errors turn into an
//! invalid signal.

use super::dbc::E2eLayout;
use adas_types::CanFrame;

const CRC8: crc::Crc<u8> = crc::Crc::<u8>::new(&crc::CRC_8_SAE_J1850);

/// The counter runs 0..=14.
pub const COUNTER_MODULO: u8 = 15;

/// CRC-8 SAE J1850 over the data id (low byte first) and `payload`.
pub fn crc8(data_id: u16, payload: &[u8]) -> u8 {
    let mut digest = CRC8.digest();
    digest.update(&data_id.to_le_bytes());
    digest.update(payload);
    digest.finalize()
}

/// The CRC over every byte of `frame` except the CRC byte.
fn frame_crc(frame: &CanFrame, layout: E2eLayout) -> u8 {
    let data_id = (frame.id & 0xFFFF) as u16;
    let p = frame.payload();
    let mut digest = CRC8.digest();
    digest.update(&data_id.to_le_bytes());
    for (i, b) in p.iter().enumerate() {
        if i != layout.crc_byte {
            digest.update(&[*b]);
        }
    }
    digest.finalize()
}

/// Writes `counter` (mod 15) and the CRC into an encoded frame.
pub fn protect(frame: &mut CanFrame, layout: E2eLayout, counter: u8) {
    let bit = layout.counter_start_bit as usize;
    let (byte, shift) = (bit / 8, bit % 8);
    if byte < 8 && layout.crc_byte < 8 {
        frame.data[byte] =
            (frame.data[byte] & !(0x0F << shift)) | ((counter % COUNTER_MODULO) << shift);
        frame.data[layout.crc_byte] = frame_crc(frame, layout);
    }
}

/// The counter of a frame.
pub fn counter_of(frame: &CanFrame, layout: E2eLayout) -> u8 {
    let bit = layout.counter_start_bit as usize;
    frame
        .data
        .get(bit / 8)
        .map_or(0, |b| (b >> (bit % 8)) & 0x0F)
}

/// Is the CRC of a received frame right?
pub fn crc_ok(frame: &CanFrame, layout: E2eLayout) -> bool {
    usize::from(frame.len) > layout.crc_byte
        && frame.data[layout.crc_byte] == frame_crc(frame, layout)
}

/// Keeps the alive counter of one sent message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Protector {
    next: u8,
}

impl Protector {
    pub fn protect(&mut self, frame: &mut CanFrame, layout: Option<E2eLayout>) {
        if let Some(layout) = layout {
            protect(frame, layout, self.next);
            self.next = (self.next + 1) % COUNTER_MODULO;
        }
    }
}

/// What the E2E check says about one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E2eStatus {
    /// New data, counter incremented by one (or the first frame).
    Ok,
    /// New data, but `n` frames were lost in between (delta 2..=max_delta).
    OkSomeLost(u8),
    /// Same counter as before: no new data.
    Repeated,
    /// Counter jumped too far (or 15, which is never sent).
    WrongSequence,
    /// CRC mismatch.
    WrongCrc,
}

/// Receiver-side check of one message's counter and CRC.
#[derive(Debug, Clone, Copy)]
pub struct Checker {
    layout: E2eLayout,
    last: Option<u8>,
    /// Frames discarded for a bad CRC since the last good one: each widens the accepted delta by
    /// one, so a corrupted frame costs that frame only, not the next good one too.
    discarded: u8,
    /// The largest accepted counter delta (E2E_P01 `MaxDeltaCounter`).
    pub max_delta: u8,
}

impl Checker {
    pub fn new(layout: E2eLayout, max_delta: u8) -> Checker {
        Checker {
            layout,
            last: None,
            discarded: 0,
            max_delta: max_delta.clamp(1, 14),
        }
    }

    /// Forget the last counter (after a timeout: the next frame resynchronises).
    pub fn resync(&mut self) {
        self.last = None;
        self.discarded = 0;
    }

    pub fn check(&mut self, frame: &CanFrame) -> E2eStatus {
        if !crc_ok(frame, self.layout) {
            self.discarded = self.discarded.saturating_add(1);
            return E2eStatus::WrongCrc;
        }
        let c = counter_of(frame, self.layout);
        if c >= COUNTER_MODULO {
            return E2eStatus::WrongSequence;
        }
        let status = match self.last {
            None => E2eStatus::Ok,
            Some(last) => {
                let delta = (c + COUNTER_MODULO - last) % COUNTER_MODULO;
                match delta {
                    0 => E2eStatus::Repeated,
                    1 => E2eStatus::Ok,
                    d if d <= self.max_delta.saturating_add(self.discarded).min(14) => {
                        E2eStatus::OkSomeLost(d - 1)
                    }
                    _ => E2eStatus::WrongSequence,
                }
            }
        };
        // A wrong sequence still moves the reference on, as E2E_P01 does, so a single lost burst
        // costs one error, not all the following frames.
        if status != E2eStatus::Repeated {
            self.last = Some(c);
            self.discarded = 0;
        }
        status
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::can::dbc::{AebStatus, VehicleSpeed};

    #[test]
    fn crc_is_sae_j1850() {
        assert_eq!(CRC8.checksum(b"123456789"), 0x4B);
    }

    #[test]
    fn protect_then_check_round_trips_and_catches_corruption() {
        let layout = VehicleSpeed::E2E.unwrap();
        let mut p = Protector::default();
        let mut rx = Checker::new(layout, 2);
        for i in 0..40u32 {
            let mut f = VehicleSpeed {
                vs_speed: f64::from(i),
                ..Default::default()
            }
            .encode();
            p.protect(&mut f, Some(layout));
            assert_eq!(counter_of(&f, layout), (i % 15) as u8);
            assert_eq!(rx.check(&f), E2eStatus::Ok, "frame {i}");
        }
        let mut f = VehicleSpeed::default().encode();
        protect(&mut f, layout, 2);
        let mut bad = f;
        bad.data[0] ^= 1;
        assert_eq!(rx.check(&bad), E2eStatus::WrongCrc);
        // Last good counter was 39 % 15 = 9; 2 is a jump of 8.
        assert_eq!(rx.check(&f), E2eStatus::WrongSequence);
        assert_eq!(rx.check(&f), E2eStatus::Repeated);
        let mut g = f;
        protect(&mut g, layout, 4);
        assert_eq!(rx.check(&g), E2eStatus::OkSomeLost(1));
    }

    #[test]
    fn crc_covers_the_data_id() {
        let layout = AebStatus::E2E.unwrap();
        let mut f = AebStatus::default().encode();
        protect(&mut f, layout, 0);
        let mut other = f;
        other.id = 0x120;
        assert!(crc_ok(&f, layout));
        assert!(!crc_ok(&other, layout));
    }
}
