//! CAN output. Message layout is provisional (until the DBC-based CAN work) and lives in one
//! module, [`messages`]; [`candump`] writes frames in can-utils' log format.

pub mod candump;
pub mod dbc;
pub mod e2e;
pub mod messages;
pub mod replay;
#[cfg(target_os = "linux")]
pub mod socketcan;
pub mod supervision;

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
