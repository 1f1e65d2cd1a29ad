//! CAN input replayed from a candump log (`(sec.usec) iface ID#HEX`, as `candump -L` writes it),
//! for running recorded drives: the frames are handed out in time order up to a given time.
//! Times are rebased so the first frame of the log is at `offset_ns` (normally 0, the start of the
//! camera source), which keeps camera and CAN on one clock when both start together.

use super::candump::parse_line;
use adas_types::CanFrame;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("CAN log {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CAN log {path} line {line}: not a candump line `(sec.usec) iface ID#HEX`: {text}")]
    Syntax {
        path: PathBuf,
        line: usize,
        text: String,
    },
}

/// Frames of a candump log, in time order.
#[derive(Debug, Clone)]
pub struct CandumpReplay {
    frames: VecDeque<(u64, CanFrame)>,
}

impl CandumpReplay {
    pub fn open(path: &Path, offset_ns: u64) -> Result<CandumpReplay, ReplayError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, offset_ns).map_err(|(line, text)| ReplayError::Syntax {
            path: path.to_path_buf(),
            line,
            text,
        })
    }

    /// Parses log text; blank lines and `#` comments are skipped.
    pub fn parse(text: &str, offset_ns: u64) -> Result<CandumpReplay, (usize, String)> {
        let mut frames = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (t, _iface, frame) = parse_line(l).ok_or((i + 1, l.to_string()))?;
            frames.push((t, frame));
        }
        frames.sort_by_key(|(t, _)| *t);
        let first = frames.first().map_or(0, |(t, _)| *t);
        Ok(CandumpReplay {
            frames: frames
                .into_iter()
                .map(|(t, f)| (t - first + offset_ns, f))
                .collect(),
        })
    }

    /// Every frame with a time ≤ `t_ns` not handed out yet.
    pub fn until(&mut self, t_ns: u64) -> Vec<(u64, CanFrame)> {
        let mut out = Vec::new();
        while self.frames.front().is_some_and(|(t, _)| *t <= t_ns) {
            if let Some(item) = self.frames.pop_front() {
                out.push(item);
            }
        }
        out
    }

    pub fn remaining(&self) -> usize {
        self.frames.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replays_in_time_order_rebased() {
        let log = "(1700000000.100000) vcan0 0A0#1027010000000000\n\n# c\n(1700000000.000000) vcan0 0A1#00\n(1700000000.200000) vcan0 0A0#1127010000000000\n";
        let mut r = CandumpReplay::parse(log, 5).unwrap();
        let a = r.until(5);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].1.id, 0xA1);
        let b = r.until(100_000_005);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].0, 100_000_005);
        assert_eq!(r.remaining(), 1);
    }

    #[test]
    fn names_the_bad_line() {
        let err = CandumpReplay::parse("(1.0) vcan0 0A0#00\nnonsense\n", 0).unwrap_err();
        assert_eq!(err.0, 2);
    }
}
