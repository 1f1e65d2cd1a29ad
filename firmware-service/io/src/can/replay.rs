//! CAN input replayed from a candump log (`(sec.usec) iface ID#HEX`, as `candump -L` writes it),
//! for running recorded drives: the frames are handed out in time order up to a given time.
//! Times are rebased so the first frame of the log is at `offset_ns` (normally 0, the start of the
//! camera source), which keeps camera and CAN on one clock when both start together.
//!
//! The log is streamed: lines are read as the replay's time advances, so memory stays bounded
//! whatever the file's size (a drive's log can be gigabytes). What is held:
//! - a reorder window of [`REORDER_WINDOW`] frames, which puts a slightly out-of-order log (candump
//!   of several interfaces interleaves their sockets' timestamps) in time order, as sorting the
//!   whole log would; a frame earlier than one already handed out is skipped as a bad line;
//! - one line of at most [`MAX_LINE`] bytes; the rest of a longer line is read past, not kept.
//!
//! One bad line does not stop a drive: it is skipped, counted ([`ReplayStats`]) and reported
//! (the first [`WARNED_LINES`] each with file and line, then only the count). Remote, error and
//! CAN FD frames are counted as ignored: a log may hold them, but they are no input. Only a log
//! without a single data frame, or one that cannot be read, is an error at [`CandumpReplay::open`].

use super::candump::{parse_line, LineError};
use adas_types::CanFrame;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Frames held to restore the time order. About 1 s of a fully loaded 500 kbit/s bus (~4000
/// frames/s), far more disorder than candump's interleaving makes, in ~160 KiB.
pub const REORDER_WINDOW: usize = 4096;
/// Longest line kept. A classic frame's candump line is under 80 bytes; longer lines are bad.
pub const MAX_LINE: usize = 1024;
/// Bad lines reported one by one; the others are only counted (a corrupt log must not flood the
/// log of a run).
pub const WARNED_LINES: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read CAN log {path}: {source} (check the path and that it is readable)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "CAN log {path}: no CAN data frame in {lines} lines{first_bad}; expected \
         `(sec.usec) iface ID#HEX` lines as `candump -L` writes them"
    )]
    NoFrames {
        path: PathBuf,
        lines: usize,
        /// `; line N: why` for the first bad line, if there was one.
        first_bad: String,
    },
}

/// Why a line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadLine {
    #[error(transparent)]
    Parse(#[from] LineError),
    #[error("longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("not UTF-8 text")]
    NotText,
    #[error(
        "{behind_ns} ns before a frame already replayed; a log may be out of order by at most \
         {REORDER_WINDOW} frames"
    )]
    OutOfOrder { behind_ns: u64 },
    #[error("its time, rebased to the replay's start, does not fit in 64-bit nanoseconds")]
    RebaseOverflow,
}

/// What the replay has read so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Data frames handed out.
    pub frames: u64,
    /// Lines skipped as bad (malformed, too long, out of order).
    pub bad_lines: u64,
    /// Well-formed lines of remote, error or CAN FD frames.
    pub ignored: u64,
}

/// A frame waiting in the reorder window, ordered by (log time, line): equal times keep the
/// file's order.
#[derive(Debug)]
struct Pending {
    key: (u64, usize),
    frame: CanFrame,
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Pending {}

/// A line read, without its line break.
enum Line {
    Text,
    TooLong,
    End,
}

/// Frames of a candump log, in time order, read as they are needed.
#[derive(Debug)]
pub struct CandumpReplay<R = BufReader<File>> {
    path: PathBuf,
    reader: R,
    line: Vec<u8>,
    line_no: usize,
    at_end: bool,
    window: BinaryHeap<Reverse<Pending>>,
    /// Log time of the earliest frame: replayed at `offset_ns`.
    base_ns: u64,
    offset_ns: u64,
    /// Log time of the last frame handed out (`base_ns` before the first): an earlier frame
    /// read now is too late for the window.
    floor_ns: u64,
    first_bad: Option<(usize, BadLine)>,
    stats: ReplayStats,
}

impl CandumpReplay {
    pub fn open(path: &Path, offset_ns: u64) -> Result<CandumpReplay, ReplayError> {
        let file = File::open(path).map_err(|source| ReplayError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        CandumpReplay::from_reader(BufReader::new(file), path, offset_ns)
    }
}

impl<R: BufRead> CandumpReplay<R> {
    /// A replay of the log `reader` gives; `path` names it in messages. Reads up to
    /// [`REORDER_WINDOW`] frames to find the earliest, the rebasing's origin. Blank lines and `#`
    /// comments are skipped.
    pub fn from_reader(
        reader: R,
        path: &Path,
        offset_ns: u64,
    ) -> Result<CandumpReplay<R>, ReplayError> {
        let mut replay = CandumpReplay {
            path: path.to_path_buf(),
            reader,
            // Never grows: `read_line` keeps at most MAX_LINE bytes.
            line: Vec::with_capacity(MAX_LINE),
            line_no: 0,
            at_end: false,
            window: BinaryHeap::new(),
            base_ns: 0,
            offset_ns,
            floor_ns: 0,
            first_bad: None,
            stats: ReplayStats::default(),
        };
        replay.refill().map_err(|source| ReplayError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let Some(Reverse(first)) = replay.window.peek() else {
            return Err(ReplayError::NoFrames {
                path: path.to_path_buf(),
                lines: replay.line_no,
                first_bad: replay
                    .first_bad
                    .map_or(String::new(), |(line, why)| format!("; line {line}: {why}")),
            });
        };
        replay.base_ns = first.key.0;
        replay.floor_ns = first.key.0;
        Ok(replay)
    }

    /// Every frame with a (rebased) time ≤ `t_ns` not handed out yet, in time order. A read error
    /// midway ends the log there (reported once): the input then times out, which inhibits the
    /// decider, the safe outcome.
    pub fn until(&mut self, t_ns: u64) -> Vec<(u64, CanFrame)> {
        let mut out = Vec::new();
        loop {
            if let Err(e) = self.refill() {
                tracing::error!(
                    "cannot read CAN log {} after line {}: {e}; the CAN input ends here",
                    self.path.display(),
                    self.line_no
                );
                self.at_end = true;
            }
            let Some(Reverse(next)) = self.window.peek() else {
                break;
            };
            let (t_log, line) = next.key;
            // Never below the base (earlier frames are out of order); the offset may overflow.
            let Some(t) = t_log
                .checked_sub(self.base_ns)
                .and_then(|dt| dt.checked_add(self.offset_ns))
            else {
                self.window.pop();
                self.bad(line, BadLine::RebaseOverflow);
                continue;
            };
            if t > t_ns {
                break;
            }
            let frame = next.frame;
            self.window.pop();
            self.floor_ns = t_log;
            self.stats.frames += 1;
            out.push((t, frame));
        }
        out
    }

    pub fn stats(&self) -> ReplayStats {
        self.stats
    }

    /// Reads lines until the window is full or the log ends.
    fn refill(&mut self) -> std::io::Result<()> {
        while !self.at_end && self.window.len() < REORDER_WINDOW {
            let line = read_line(&mut self.reader, &mut self.line)?;
            if matches!(line, Line::End) {
                self.at_end = true;
                if self.stats.bad_lines > WARNED_LINES {
                    tracing::warn!(
                        "CAN log {}: {} bad lines skipped in all",
                        self.path.display(),
                        self.stats.bad_lines
                    );
                }
                break;
            }
            self.line_no += 1;
            match self.take(line) {
                Ok(Some(pending)) => self.window.push(Reverse(pending)),
                Ok(None) => {}
                Err(why) => self.bad(self.line_no, why),
            }
        }
        Ok(())
    }

    /// The frame of the line just read: `None` for blank lines, comments and non-data frames.
    fn take(&mut self, line: Line) -> Result<Option<Pending>, BadLine> {
        if matches!(line, Line::TooLong) {
            return Err(BadLine::TooLong);
        }
        let text = std::str::from_utf8(&self.line).map_err(|_| BadLine::NotText)?;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return Ok(None);
        }
        match parse_line(text) {
            Ok((t_ns, _, frame)) if t_ns >= self.floor_ns => Ok(Some(Pending {
                key: (t_ns, self.line_no),
                frame,
            })),
            Ok((t_ns, _, _)) => Err(BadLine::OutOfOrder {
                behind_ns: self.floor_ns - t_ns,
            }),
            Err(e) if e.is_not_data() => {
                self.stats.ignored += 1;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn bad(&mut self, line: usize, why: BadLine) {
        self.stats.bad_lines += 1;
        self.first_bad.get_or_insert((line, why));
        if self.stats.bad_lines <= WARNED_LINES {
            tracing::warn!(
                "CAN log {} line {line} skipped: {why}{}",
                self.path.display(),
                if self.stats.bad_lines == WARNED_LINES {
                    "; further bad lines are only counted (fix or delete them; the drive goes on \
                     without them)"
                } else {
                    ""
                }
            );
        }
    }
}

/// Reads one line into `buf` without its `\n`, keeping at most [`MAX_LINE`] bytes: the rest of a
/// longer line is consumed and dropped, so a file without line breaks cannot fill the memory.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let (mut read_any, mut too_long) = (false, false);
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (read_any, too_long) {
                (false, _) => Line::End,
                (true, false) => Line::Text,
                (true, true) => Line::TooLong,
            });
        }
        read_any = true;
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        let room = MAX_LINE.saturating_sub(buf.len());
        too_long |= part.len() > room;
        buf.extend_from_slice(&part[..part.len().min(room)]);
        let used = newline.map_or(chunk.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(if too_long { Line::TooLong } else { Line::Text });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::can::candump::format_line;
    use std::io::Read;

    fn replay(log: &str, offset_ns: u64) -> CandumpReplay<&[u8]> {
        CandumpReplay::from_reader(log.as_bytes(), Path::new("test.log"), offset_ns).unwrap()
    }

    #[test]
    fn replays_in_time_order_rebased() {
        let log = "(1700000000.100000) vcan0 0A0#1027010000000000\n\n# c\n(1700000000.000000) vcan0 0A1#00\n(1700000000.200000) vcan0 0A0#1127010000000000\n";
        let mut r = replay(log, 5);
        let a = r.until(5);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].1.id, 0xA1);
        let b = r.until(100_000_005);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].0, 100_000_005);
        assert_eq!(r.until(u64::MAX).len(), 1);
        assert_eq!(r.stats().frames, 3);
    }

    #[test]
    fn equal_times_keep_the_file_order() {
        let log = "(1.000000) c 0A0#01\n(1.000000) c 0A1#02\n(1.000000) c 0A2#03\n";
        let ids: Vec<u32> = replay(log, 0).until(0).iter().map(|(_, f)| f.id).collect();
        assert_eq!(ids, [0xA0, 0xA1, 0xA2]);
    }

    #[test]
    fn a_bad_line_in_the_middle_is_skipped_and_counted() {
        let log = "(1.000000) vcan0 0A0#00\nnonsense\n(1.020000) vcan0 0A0#01\n\
                   (99999999999999999999.000000) vcan0 0A0#02\n(1.040000) vcan0 0A0#03\n";
        let mut r = replay(log, 0);
        let frames = r.until(u64::MAX);
        let data: Vec<u8> = frames.iter().map(|(_, f)| f.data[0]).collect();
        assert_eq!(data, [0, 1, 3], "the drive goes on past both bad lines");
        assert_eq!(frames[2].0, 40_000_000);
        assert_eq!(r.stats().bad_lines, 2);
        assert_eq!(
            r.first_bad,
            Some((2, BadLine::Parse(LineError::Missing("interface"))))
        );
    }

    #[test]
    fn an_overflowing_timestamp_is_rejected_naming_the_line() {
        let err = CandumpReplay::from_reader(
            "# header\n(99999999999999999999.000000) vcan0 0A0#00\n".as_bytes(),
            Path::new("drive.log"),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("drive.log"), "{err}");
        assert!(err.contains("line 2: the time does not fit"), "{err}");
        // Rebasing onto an offset that overflows: a bad line, never a wrapped time.
        let log = "(1.000000) c 0A0#00\n(2.000000) c 0A0#01\n";
        let mut r = replay(log, u64::MAX - 500_000_000);
        assert_eq!(r.until(u64::MAX).len(), 1);
        assert_eq!(r.first_bad, Some((2, BadLine::RebaseOverflow)));
    }

    #[test]
    fn no_data_frame_or_no_file_is_an_error_at_open() {
        let err = CandumpReplay::from_reader(
            "garbage\n(1.000000) can0 0A0#R\n".as_bytes(),
            Path::new("x.log"),
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("x.log: no CAN data frame in 2 lines; line 1"),
            "{err}"
        );
        let err = CandumpReplay::open(Path::new("/nonexistent/drive.log"), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/drive.log"), "{err}");
    }

    #[test]
    fn remote_error_and_fd_frames_are_ignored_not_bad() {
        let log = "(1.000000) c 0A0#R\n(1.000000) c 20000080#0000000000000000\n\
                   (1.000000) c 0A0##100\n(1.000000) c 000000A0#00\n";
        let mut r = replay(log, 0);
        let frames = r.until(u64::MAX);
        assert_eq!(frames.len(), 1);
        assert!(frames[0].1.is_extended());
        assert_eq!(
            r.stats(),
            ReplayStats {
                frames: 1,
                bad_lines: 0,
                ignored: 3
            }
        );
    }

    #[test]
    fn a_frame_later_than_the_window_is_skipped() {
        // One frame dated before everything, after more than a window of frames.
        let mut log = String::new();
        for i in 0..REORDER_WINDOW as u64 + 10 {
            let f = CanFrame {
                id: 0xA0,
                len: 0,
                data: [0; 8],
            };
            log += &format_line(1_000_000_000 + i * 1_000, "c", &f);
            log.push('\n');
        }
        log += "(0.000000) c 0A0#\n(2.000000) c 0A0#\n";
        let mut r = replay(&log, 0);
        assert_eq!(r.until(u64::MAX).len(), REORDER_WINDOW + 11);
        assert_eq!(r.stats().bad_lines, 1);
        assert!(matches!(r.first_bad, Some((_, BadLine::OutOfOrder { .. }))));
    }

    /// A log of `n` frames made as it is read (nothing stored): VehicleSpeed every 20 ms, every
    /// 50th frame swapped with its successor (slightly out of order).
    struct Generated {
        n: u64,
        next: u64,
        pending: Vec<u8>,
    }

    impl Read for Generated {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.pending.is_empty() && self.next < self.n {
                let i = self.next;
                let k = match i % 50 {
                    0 if i + 1 < self.n => i + 1,
                    1 => i - 1,
                    _ => i,
                };
                let f = CanFrame {
                    id: 0xA0,
                    len: 8,
                    data: k.to_le_bytes(),
                };
                self.pending = format_line(1_700_000_000_000_000_000 + k * 20_000_000, "can0", &f)
                    .into_bytes();
                self.pending.push(b'\n');
                self.next += 1;
            }
            let n = self.pending.len().min(out.len());
            out[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn a_large_log_is_streamed_with_bounded_buffering() {
        // 300 000 lines (~15 MB, 100 min of drive) through the replay; the window and the line
        // buffer never grow past their bounds.
        let n = 300_000u64;
        let reader = BufReader::new(Generated {
            n,
            next: 0,
            pending: Vec::new(),
        });
        let mut r = CandumpReplay::from_reader(reader, Path::new("big.log"), 0).unwrap();
        let (mut count, mut last) = (0u64, 0u64);
        let mut t = 0;
        while count < n {
            t += 100_000_000;
            for (ts, f) in r.until(t) {
                assert!(ts >= last, "time order");
                assert_eq!(u64::from_le_bytes(f.data) * 20_000_000, ts);
                last = ts;
                count += 1;
            }
            assert!(r.window.len() <= REORDER_WINDOW);
            assert!(r.line.capacity() <= MAX_LINE);
        }
        assert_eq!(r.stats().bad_lines, 0);
    }

    #[test]
    fn a_line_without_end_is_read_past_not_kept() {
        // 8 MB without a line break between two good lines.
        let reader = "(1.000000) c 0A0#00\n"
            .as_bytes()
            .chain(std::io::repeat(b'x').take(8 << 20))
            .chain("\n(1.100000) c 0A0#01\n".as_bytes());
        let mut r =
            CandumpReplay::from_reader(BufReader::new(reader), Path::new("long.log"), 0).unwrap();
        assert_eq!(r.until(u64::MAX).len(), 2);
        assert_eq!(r.first_bad, Some((2, BadLine::TooLong)));
        assert!(r.line.capacity() <= MAX_LINE);
    }
}
