//! systemd's notification protocol (`sd_notify(3)`), a few lines over a unix datagram socket:
//! `READY=1` once the pipeline is up, `STATUS=…` for `systemctl status`, `WATCHDOG=1` while the
//! pipeline makes progress (at most every half `WatchdogSec`), `STOPPING=1` on shutdown.
//! Without `$NOTIFY_SOCKET` (not started by systemd) everything here is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
    watchdog: Option<Duration>,
    last_pet: Option<Instant>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (honouring `$WATCHDOG_PID`).
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|p| !p.is_empty())
            .and_then(|path| UnixDatagram::unbound().ok().map(|s| (s, path)));
        let pid_ok = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && pid_ok)
            .map(Duration::from_micros);
        Notifier {
            socket,
            watchdog,
            last_pet: None,
        }
    }

    /// The watchdog interval systemd asked for, if any.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    pub fn send(&self, state: &str) {
        let Some((socket, path)) = &self.socket else {
            return;
        };
        let result = if let Some(name) = path.strip_prefix('@') {
            abstract_send(socket, name.as_bytes(), state.as_bytes())
        } else {
            socket.send_to(state.as_bytes(), path).map(|_| ())
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "sd_notify failed");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=shutting down");
    }

    /// The pipeline made progress: pet the watchdog if half its interval has passed.
    pub fn progress(&mut self) {
        let Some(interval) = self.watchdog else {
            return;
        };
        let now = Instant::now();
        if self
            .last_pet
            .is_none_or(|t| now.duration_since(t) >= interval / 2)
        {
            self.send("WATCHDOG=1");
            self.last_pet = Some(now);
        }
    }
}

#[cfg(target_os = "linux")]
fn abstract_send(socket: &UnixDatagram, name: &[u8], msg: &[u8]) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(msg, &addr).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn abstract_send(_: &UnixDatagram, _: &[u8], _: &[u8]) -> std::io::Result<()> {
    Err(std::io::Error::other("abstract sockets need Linux"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sends_ready_and_pets_the_watchdog_at_half_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut n = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                path.to_string_lossy().into_owned(),
            )),
            watchdog: Some(Duration::from_secs(10)),
            last_pet: None,
        };
        n.ready("running");
        let mut buf = [0u8; 256];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=running");
        n.progress();
        n.progress(); // too soon: not sent
        n.status("x");
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"STATUS=x");
    }
}
