//! can-utils' log format, one frame per line: `(sec.usec) iface ID#HEX`.
//! Readable by `canplayer`, `log2asc` and python-can's `CanutilsLogReader`.
//!
//! The id's width is its number of hex digits, as in can-utils (`lib.c`): 3 digits are a
//! standard (11-bit) id, 8 digits an extended (29-bit) one — `0A0#…` and `000000A0#…` are
//! different messages. An 8-digit id with bit 29 set (`CAN_ERR_FLAG`) is an error frame, `ID#R`
//! a remote (RTR) frame and `ID##…` a CAN FD frame; none of them is a classic data frame, and
//! [`parse_line`] says so with its own error ([`LineError::is_not_data`]).

use adas_types::CanFrame;

/// `CAN_ERR_FLAG` of `linux/can.h`: can-utils writes error frames as 8-digit ids with it set.
const ERR_FLAG: u32 = 0x2000_0000;

/// Formats one log line (without newline) as `candump -L` writes it: seconds zero-padded to
/// 10 digits, microseconds to 6, standard ids with 3 hex digits and extended ones with 8, data
/// in upper-case hex.
pub fn format_line(t_ns: u64, interface: &str, frame: &CanFrame) -> String {
    let secs = t_ns / 1_000_000_000;
    let usecs = (t_ns % 1_000_000_000) / 1_000;
    let id = if frame.is_extended() {
        format!("{:08X}", frame.raw_id())
    } else {
        format!("{:03X}", frame.raw_id())
    };
    let data: String = frame.payload().iter().map(|b| format!("{b:02X}")).collect();
    format!("({secs:010}.{usecs:06}) {interface} {id}#{data}")
}

/// Why a line is not a classic CAN data frame in candump format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not `(sec.usec) iface ID#HEX`: the {0} is missing")]
    Missing(&'static str),
    #[error("the time is not `(seconds.microseconds)` with 6 digits of microseconds")]
    Time,
    #[error("the time does not fit in 64-bit nanoseconds (it is after the year 2554)")]
    TimeOverflow,
    #[error("the frame is not `ID#HEX`")]
    Frame,
    #[error("the id is not 3 hex digits (standard id) or 8 (extended id)")]
    Id,
    #[error("standard id 0x{0:03X} is above 0x7FF")]
    StandardIdRange(u32),
    #[error("extended id 0x{0:08X} is above 0x1FFFFFFF")]
    ExtendedIdRange(u32),
    #[error("the data is not 0 to 8 bytes written as pairs of hex digits")]
    Data,
    #[error("unexpected text after the frame (only candump -x's `R` or `T` may follow)")]
    Trailing,
    #[error("a remote (RTR) frame, not data")]
    Remote,
    #[error("an error frame, not data")]
    ErrorFrame,
    #[error("a CAN FD or XL frame (`ID##…`); only classic CAN is read")]
    NotClassic,
}

impl LineError {
    /// A well-formed line of a frame that is not a classic data frame (RTR, error, FD): a log may
    /// hold them legitimately, but they are no input.
    pub fn is_not_data(&self) -> bool {
        matches!(
            self,
            LineError::Remote | LineError::ErrorFrame | LineError::NotClassic
        )
    }
}

/// Parses one log line into its time (ns), interface and frame.
///
/// Accepts what can-utils and python-can write: seconds with or without zero padding, any runs
/// of blanks between the fields, hex digits in either case, and candump -x's direction (`R`/`T`)
/// after the frame. [`format_line`] of the result is the line in candump's own form.
pub fn parse_line(line: &str) -> Result<(u64, &str, CanFrame), LineError> {
    let mut fields = line.split_ascii_whitespace();
    let time = fields.next().ok_or(LineError::Missing("time"))?;
    let interface = fields.next().ok_or(LineError::Missing("interface"))?;
    let frame = fields.next().ok_or(LineError::Missing("frame"))?;
    if !matches!(fields.next(), None | Some("R" | "T")) || fields.next().is_some() {
        return Err(LineError::Trailing);
    }
    Ok((parse_time(time)?, interface, parse_frame(frame)?))
}

/// `(seconds.microseconds)` → ns, with checked arithmetic: a time beyond u64 is an error, never a
/// wrapped or saturated time (either would stall or skip the replay's clock).
fn parse_time(field: &str) -> Result<u64, LineError> {
    let (secs, usecs) = field
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .and_then(|t| t.split_once('.'))
        .ok_or(LineError::Time)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || !digits(usecs) || usecs.len() != 6 {
        return Err(LineError::Time);
    }
    // Only digits: the one way to fail is overflow.
    let secs: u64 = secs.parse().map_err(|_| LineError::TimeOverflow)?;
    let usecs: u64 = usecs.parse().map_err(|_| LineError::Time)?;
    secs.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(usecs * 1_000))
        .ok_or(LineError::TimeOverflow)
}

/// `ID#HEX` → frame; `ID#R…` (remote), `ID##…` (FD) and error-flagged ids are rejected as such.
fn parse_frame(field: &str) -> Result<CanFrame, LineError> {
    let (id, rest) = field.split_once('#').ok_or(LineError::Frame)?;
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LineError::Id);
    }
    let value = u32::from_str_radix(id, 16).map_err(|_| LineError::Id)?;
    let id = match id.len() {
        3 if value > CanFrame::SFF_MASK => return Err(LineError::StandardIdRange(value)),
        3 => value,
        8 if value & ERR_FLAG != 0 => return Err(LineError::ErrorFrame),
        8 if value > CanFrame::EFF_MASK => return Err(LineError::ExtendedIdRange(value)),
        8 => value | CanFrame::EFF_FLAG,
        _ => return Err(LineError::Id),
    };
    if rest.starts_with('#') {
        return Err(LineError::NotClassic);
    }
    if rest.starts_with('R') {
        return Err(LineError::Remote);
    }
    let hex = rest.as_bytes();
    if !hex.len().is_multiple_of(2) || hex.len() > 16 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(LineError::Data);
    }
    let mut data = [0u8; 8];
    for (byte, pair) in data.iter_mut().zip(hex.chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| LineError::Data)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| LineError::Data)?;
    }
    let len = u8::try_from(hex.len() / 2).map_err(|_| LineError::Data)?;
    Ok(CanFrame { id, len, data })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(id: u32, payload: &[u8]) -> CanFrame {
        let mut data = [0u8; 8];
        data[..payload.len()].copy_from_slice(payload);
        CanFrame {
            id,
            len: payload.len() as u8,
            data,
        }
    }

    #[test]
    fn both_widths_round_trip_in_candump_form() {
        // Lines as `candump -L` writes them (can-utils lib.c: 3 digits for a standard id,
        // 8 for an extended one; candump.c: `(%010lu.%06lu)`).
        let cases = [
            (
                "(1700000000.123456) can0 120#01D304CEFF01005A",
                1_700_000_000_123_456_000,
                frame(0x120, &[1, 0xD3, 4, 0xCE, 0xFF, 1, 0, 0x5A]),
            ),
            (
                "(0000000000.000000) vcan0 18DAF110#ABCD",
                0,
                frame(0x18DA_F110 | CanFrame::EFF_FLAG, &[0xAB, 0xCD]),
            ),
            (
                "(0000000012.000001) vcan0 000000A0#",
                12_000_001_000,
                frame(0xA0 | CanFrame::EFF_FLAG, &[]),
            ),
            (
                "(0000000012.000001) vcan0 0A0#",
                12_000_001_000,
                frame(0xA0, &[]),
            ),
        ];
        for (line, t_ns, f) in cases {
            let (t, iface, back) = parse_line(line).unwrap();
            assert_eq!((t, back), (t_ns, f), "{line}");
            assert_eq!(format_line(t, iface, &back), line);
        }
        // Extended 0x0A0 and standard 0x0A0 stay apart.
        let (_, _, ext) = parse_line("(1.000000) can0 000000A0#00").unwrap();
        let (_, _, std) = parse_line("(1.000000) can0 0A0#00").unwrap();
        assert!(ext.is_extended() && !std.is_extended());
        assert_ne!(ext.id, std.id);
        // What other writers produce: unpadded seconds (python-can, asc2log), lower case,
        // candump -x's direction, padding blanks of candump with several interfaces.
        let (t, iface, f) = parse_line("(1.500000)   vcan0 1ab#0a R").unwrap();
        assert_eq!(
            (t, iface, f),
            (1_500_000_000, "vcan0", frame(0x1AB, &[0x0A]))
        );
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let err = |l: &str| parse_line(l).unwrap_err();
        assert_eq!(err("garbage"), LineError::Missing("interface"));
        assert_eq!(err("(1.000000) can0"), LineError::Missing("frame"));
        assert_eq!(err("(1.0) can0 120#AB"), LineError::Time);
        assert_eq!(err("(+1.000000) can0 120#AB"), LineError::Time);
        assert_eq!(
            err("(99999999999999999999.000000) can0 0A0#00"),
            LineError::TimeOverflow
        );
        assert_eq!(
            err("(18446744073709551615.000000) can0 0A0#00"),
            LineError::TimeOverflow
        );
        assert_eq!(err("(1.000000) can0 120#ABC"), LineError::Data);
        assert_eq!(
            err("(1.000000) can0 120#001122334455667788"),
            LineError::Data
        );
        assert_eq!(err("(1.000000) can0 120"), LineError::Frame);
        assert_eq!(err("(1.000000) can0 12#00"), LineError::Id);
        assert_eq!(err("(1.000000) can0 +12#00"), LineError::Id);
        assert_eq!(
            err("(1.000000) can0 800#00"),
            LineError::StandardIdRange(0x800)
        );
        assert_eq!(
            err("(1.000000) can0 C00000A0#00"),
            LineError::ExtendedIdRange(0xC000_00A0)
        );
        assert_eq!(err("(1.000000) can0 120#00 X"), LineError::Trailing);
        assert_eq!(err("(1.000000) can0 120#R"), LineError::Remote);
        assert_eq!(err("(1.000000) can0 00000120#R2"), LineError::Remote);
        assert_eq!(
            err("(1.000000) can0 20000080#0000000000000000"),
            LineError::ErrorFrame
        );
        assert_eq!(err("(1.000000) can0 120##1AB"), LineError::NotClassic);
        assert!(LineError::Remote.is_not_data() && !LineError::Data.is_not_data());
    }

    fn any_frame() -> impl Strategy<Value = CanFrame> {
        (
            any::<bool>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..=8),
        )
            .prop_map(|(extended, id, payload)| {
                let id = if extended {
                    (id & CanFrame::EFF_MASK) | CanFrame::EFF_FLAG
                } else {
                    id & CanFrame::SFF_MASK
                };
                frame(id, &payload)
            })
    }

    fn near_candump_line() -> impl Strategy<Value = String> {
        let time = prop_oneof![
            8 => "\\([0-9]{1,10}\\.[0-9]{6}\\)",
            1 => "\\([0-9]{1,21}\\.[0-9]{5,7}\\)",
        ];
        let id = prop_oneof![
            3 => "[0-7][0-9A-Fa-f]{2}",
            3 => "[01][0-9A-Fa-f]{7}",
            1 => "[0-9A-Fa-f]{3}|[0-9A-Fa-f]{8}",
            1 => "[0-9A-Fa-f+]{2,9}",
        ];
        let kind = prop_oneof![6 => "", 1 => "R[0-8]?", 1 => "#"];
        let data = prop_oneof![6 => "([0-9A-Fa-f]{2}){0,8}", 1 => "[0-9A-Fa-f_]{0,18}"];
        let trailer = prop_oneof![6 => "", 1 => " R", 1 => " T", 1 => " X"];
        (time, " {1,3}", "[a-z0-9]{1,5}", id, kind, data, trailer).prop_map(
            |(time, blank, iface, id, kind, data, trailer)| {
                format!("{time}{blank}{iface} {id}#{kind}{data}{trailer}")
            },
        )
    }

    proptest! {
        /// Any text: never a panic, and what is accepted is a fixed point of format → parse.
        #[test]
        fn parse_line_never_panics(line in "\\PC{0,80}") {
            if let Ok((t, iface, f)) = parse_line(&line) {
                let again = format_line(t, iface, &f);
                prop_assert_eq!(parse_line(&again), Ok((t, iface, f)));
            }
        }

        /// Nearly candump lines, each field mostly valid (so that about half are accepted and
        /// every check is reached): an accepted line formats back to itself, up to what candump
        /// writes differently (seconds' padding, hex case, blanks, -x's direction).
        #[test]
        fn accepted_lines_format_back(line in near_candump_line()) {
            let accepted = parse_line(&line);
            if let Ok((t, iface, f)) = accepted {
                let canonical = format_line(t, iface, &f);
                prop_assert_eq!(parse_line(&canonical), accepted);
                let as_candump = |l: &str| {
                    let fields: Vec<&str> = l.split_ascii_whitespace().take(3).collect();
                    let time = fields[0].trim_start_matches('(').trim_start_matches('0');
                    format!("{time} {} {}", fields[1], fields[2]).to_ascii_uppercase()
                };
                prop_assert_eq!(as_candump(&canonical), as_candump(&line));
            }
        }

        /// Every frame of either width, at any microsecond: candump's line parses back to it (so
        /// it also formats to the very same line).
        #[test]
        fn candump_lines_round_trip(t_us in 0..u64::MAX / 1_000, iface in "[a-z][a-z0-9]{0,14}",
                                    f in any_frame()) {
            let line = format_line(t_us * 1_000, &iface, &f);
            prop_assert_eq!(parse_line(&line), Ok((t_us * 1_000, iface.as_str(), f)));
        }
    }
}
