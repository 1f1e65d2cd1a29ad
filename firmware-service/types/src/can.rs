//! A frame on the CAN bus, as the codec and the transports exchange it.

/// A classic CAN frame (11-bit id, up to 8 data bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanFrame {
    pub id: u32,
    pub len: u8,
    pub data: [u8; 8],
}

impl CanFrame {
    pub fn payload(&self) -> &[u8] {
        &self.data[..usize::from(self.len.min(8))]
    }
}
