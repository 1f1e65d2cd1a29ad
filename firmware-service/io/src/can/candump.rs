//! can-utils' log format, one frame per line: `(sec.usec) iface ID#HEX`.
//! Readable by `canplayer`, `log2asc` and python-can's `CanutilsLogReader`.

use adas_types::CanFrame;
use std::io::Write;

/// Formats one log line (without newline). Standard ids are written with 3 hex digits,
/// extended ones (> 0x7FF) with 8, as candump does.
pub fn format_line(t_ns: u64, interface: &str, frame: &CanFrame) -> String {
    let secs = t_ns / 1_000_000_000;
    let usecs = (t_ns % 1_000_000_000) / 1_000;
    let id = if frame.id > 0x7FF {
        format!("{:08X}", frame.id)
    } else {
        format!("{:03X}", frame.id)
    };
    let data: String = frame.payload().iter().map(|b| format!("{b:02X}")).collect();
    format!("({secs}.{usecs:06}) {interface} {id}#{data}")
}

/// Parses one log line back into its time (ns), interface and frame.
pub fn parse_line(line: &str) -> Option<(u64, String, CanFrame)> {
    let mut parts = line.split_whitespace();
    let time = parts.next()?.strip_prefix('(')?.strip_suffix(')')?;
    let (secs, usecs) = time.split_once('.')?;
    let t_ns = secs.parse::<u64>().ok()? * 1_000_000_000 + usecs.parse::<u64>().ok()? * 1_000;
    let interface = parts.next()?.to_string();
    let (id, hex) = parts.next()?.split_once('#')?;
    let id = u32::from_str_radix(id, 16).ok()?;
    if hex.len() % 2 != 0 || hex.len() > 16 {
        return None;
    }
    let mut data = [0u8; 8];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        data[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    let len = u8::try_from(hex.len() / 2).ok()?;
    Some((t_ns, interface, CanFrame { id, len, data }))
}

/// Appends frames to a candump log.
pub struct CandumpWriter<W: Write> {
    out: W,
    interface: String,
    frames: u64,
}

impl<W: Write> CandumpWriter<W> {
    pub fn new(out: W, interface: &str) -> Self {
        Self {
            out,
            interface: interface.to_string(),
            frames: 0,
        }
    }

    pub fn write(&mut self, t_ns: u64, frame: &CanFrame) -> std::io::Result<()> {
        writeln!(self.out, "{}", format_line(t_ns, &self.interface, frame))?;
        self.frames += 1;
        Ok(())
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_candump_and_parses_back() {
        let frame = CanFrame {
            id: 0x120,
            len: 8,
            data: [1, 0xD3, 4, 0xCE, 0xFF, 1, 0, 0x5A],
        };
        let line = format_line(1_700_000_000_123_456_789, "can0", &frame);
        assert_eq!(line, "(1700000000.123456) can0 120#01D304CEFF01005A");
        let (t, iface, back) = parse_line(&line).unwrap();
        assert_eq!(
            (t, iface.as_str(), back),
            (1_700_000_000_123_456_000, "can0", frame)
        );
        let ext = CanFrame {
            id: 0x18DAF110,
            len: 2,
            data: [0xAB, 0xCD, 0, 0, 0, 0, 0, 0],
        };
        assert_eq!(
            format_line(0, "vcan0", &ext),
            "(0.000000) vcan0 18DAF110#ABCD"
        );
        assert!(parse_line("garbage").is_none());
        assert!(parse_line("(1.0) can0 120#ABC").is_none());
    }
}
