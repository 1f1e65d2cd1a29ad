//! A frame on the CAN bus, as the codec and the transports exchange it.

/// A classic CAN data frame: a standard (11-bit) or extended (29-bit) id, up to 8 data bytes.
///
/// `id` follows Linux's `struct can_frame`: an extended frame carries [`CanFrame::EFF_FLAG`]
/// above its 29-bit id, a standard frame is its 11-bit id alone. The width is part of the
/// message's identity — standard 0x0A0 and extended 0x0A0 are different messages on the bus —
/// so comparing `id` with a standard message id (the DBC's) can only match a standard frame.
/// Remote (RTR) and error frames are not `CanFrame`s: the transports drop them at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanFrame {
    pub id: u32,
    pub len: u8,
    pub data: [u8; 8],
}

impl CanFrame {
    /// Set in [`CanFrame::id`] for an extended frame (`CAN_EFF_FLAG` of `linux/can.h`).
    pub const EFF_FLAG: u32 = 0x8000_0000;
    /// The bits of a standard id (`CAN_SFF_MASK`).
    pub const SFF_MASK: u32 = 0x7FF;
    /// The bits of an extended id (`CAN_EFF_MASK`).
    pub const EFF_MASK: u32 = 0x1FFF_FFFF;

    pub fn payload(&self) -> &[u8] {
        &self.data[..usize::from(self.len.min(8))]
    }

    /// Whether the frame has a 29-bit id.
    pub fn is_extended(&self) -> bool {
        self.id & Self::EFF_FLAG != 0
    }

    /// The identifier without the width flag, masked to its width (11 or 29 bits).
    pub fn raw_id(&self) -> u32 {
        if self.is_extended() {
            self.id & Self::EFF_MASK
        } else {
            self.id & Self::SFF_MASK
        }
    }

    /// Whether `id` is one this type can hold: a standard id (≤ 0x7FF), or an extended one
    /// (≤ 0x1FFFFFFF) with [`CanFrame::EFF_FLAG`] and no other flag bit (RTR, error).
    pub fn is_valid_id(id: u32) -> bool {
        id <= Self::SFF_MASK || id & !Self::EFF_MASK == Self::EFF_FLAG
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_width_is_part_of_the_id() {
        let ext = CanFrame {
            id: 0x0A0 | CanFrame::EFF_FLAG,
            len: 0,
            data: [0; 8],
        };
        assert!(ext.is_extended());
        assert_eq!(ext.raw_id(), 0x0A0);
        assert_ne!(ext.id, 0x0A0);
        let std = CanFrame { id: 0x7FF, ..ext };
        assert!(!std.is_extended());
        assert_eq!(std.raw_id(), 0x7FF);
        assert!(CanFrame::is_valid_id(0x7FF));
        assert!(!CanFrame::is_valid_id(0x800));
        assert!(CanFrame::is_valid_id(0x1FFF_FFFF | CanFrame::EFF_FLAG));
        // RTR (0x40000000) and error (0x20000000) flags are not data frames.
        assert!(!CanFrame::is_valid_id(0x4000_0000 | CanFrame::EFF_FLAG));
        assert!(!CanFrame::is_valid_id(0x2000_0000 | CanFrame::EFF_FLAG));
        assert!(!CanFrame::is_valid_id(0x2000_0000));
    }
}
