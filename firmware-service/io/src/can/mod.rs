//! CAN transports: SocketCAN ([`socketcan`], its own thread), can-utils' candump log format
//! ([`candump`]) and a recorded log replayed as the vehicle's inputs ([`replay`]). The messages
//! themselves are `adas_core::can`.

pub mod candump;
pub mod replay;
#[cfg(target_os = "linux")]
pub mod socketcan;
