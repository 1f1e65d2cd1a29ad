//! The daemon's inputs and outputs: frame sources (image folders, video files, V4L2 cameras,
//! recordings — [`source`], their image bytes decoded by [`decode`]), CAN transports (SocketCAN, candump logs — [`can`]), the service
//! manager's notifications ([`notify`]) and the daemon's line logs ([`line_file`]). Everything
//! that touches a device or a file on the way in, and the bus and the logs on the way out.

pub mod can;
pub mod decode;
pub mod line_file;
pub mod notify;
pub mod source;
