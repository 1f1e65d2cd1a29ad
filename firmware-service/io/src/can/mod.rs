//! CAN transports: SocketCAN ([`socketcan`], its own thread), can-utils' candump log format
//! ([`candump`]) and a recorded log replayed as the vehicle's inputs ([`replay`]). The messages
//! themselves are `adas_core::can`.

pub mod candump;
pub mod replay;
#[cfg(target_os = "linux")]
pub mod socketcan;

/// The commands that make the SocketCAN interface `name` exist and come up.
pub fn bring_up_commands(name: &str) -> String {
    if name.starts_with("vcan") {
        format!("sudo ip link add dev {name} type vcan && sudo ip link set {name} up")
    } else {
        format!(
            "sudo ip link set {name} type can bitrate 500000 && sudo ip link set {name} up \
             (with the vehicle bus's bitrate)"
        )
    }
}
