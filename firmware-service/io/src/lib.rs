//! The daemon's inputs and outputs: frame sources (image folders, video files, V4L2 cameras,
//! recordings — [`source`]), CAN transports (SocketCAN, candump logs — [`can`]) and the
//! service manager's notifications ([`notify`]). Everything that touches a device or a file on
//! the way in, and the bus on the way out.

pub mod can;
pub mod notify;
pub mod source;
