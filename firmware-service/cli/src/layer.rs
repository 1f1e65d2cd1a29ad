//! The log output of every binary: one line per event on stderr, shaped for where stderr goes.
//!
//! - **Journal** (stderr is the stream `JOURNAL_STREAM` names): each line starts with its
//!   syslog priority, `<3>` error, `<4>` warning, `<6>` info, `<7>` debug and trace — the
//!   sd-daemon(3) prefix journald reads on stream stdout/stderr (`SyslogLevelPrefix=`, on by
//!   default). No time (journald stamps every line) and no colours. Chosen over writing to the
//!   journal's socket (tracing-journald): nothing to connect, nothing more for the sandbox to
//!   allow, log lines stay in order with stdout's on the same stream, and where the prefix is not
//!   understood it is still a readable line.
//! - **Terminal**: time, coloured level, target, message (`NO_COLOR` turns the colours off).
//! - **Pipe or file**: the same without colours.
//!
//! Warnings and errors that repeat (same place in the code, same text up to its numbers: frame
//! numbers, times and byte counts change, the complaint does not) are rate-limited: one line
//! per [`WINDOW`], then the count ([`crate::RateLimiter`]).

use crate::ratelimit::{Admit, RateLimiter, Repeats};
use crate::{Verbosity, LOG_ENV};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How long copies of a warning are held back after one is printed.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Kinds of warnings tracked at once (more are printed untracked).
const KINDS: usize = 256;

/// Where stderr goes, which decides the shape of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Journal,
    Terminal { colour: bool },
    Plain,
}

impl Output {
    fn detect() -> Output {
        if crate::stderr_is_journal() {
            Output::Journal
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            Output::Terminal { colour: !no_color }
        } else {
            Output::Plain
        }
    }
}

/// One log line before it is shaped: what the rate limiter keeps.
#[derive(Debug, Clone)]
struct Line {
    level: Level,
    target: String,
    /// Message and fields.
    text: String,
}

/// Which lines count as copies of each other.
type Kind = (tracing::callsite::Identifier, String);

struct Shared {
    output: Output,
    limiter: Mutex<RateLimiter<Kind, Line>>,
}

impl Shared {
    fn write(&self, lines: &[(Line, Option<Repeats>)]) {
        if lines.is_empty() {
            return;
        }
        let time = match self.output {
            Output::Journal => None,
            _ => {
                let mut s = String::new();
                let _ = tracing_subscriber::fmt::time::SystemTime
                    .format_time(&mut tracing_subscriber::fmt::format::Writer::new(&mut s));
                Some(s)
            }
        };
        let mut out = String::new();
        for (line, repeats) in lines {
            shape(&mut out, self.output, time.as_deref(), line, *repeats);
        }
        // Nothing sensible is left to do when stderr itself fails.
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
    }

    /// The counts still held back, written out (at exit).
    fn flush(&self) {
        let due = match self.limiter.lock() {
            Ok(mut l) => l.drain(Instant::now()),
            Err(_) => return,
        };
        let lines: Vec<_> = due.into_iter().map(|(l, r)| (l, Some(r))).collect();
        self.write(&lines);
    }
}

/// Appends `line` shaped for `output` (one or more `\n`-terminated lines).
fn shape(
    out: &mut String,
    output: Output,
    time: Option<&str>,
    line: &Line,
    repeats: Option<Repeats>,
) {
    let text = match repeats {
        Some(r) => format!("{} {r}", line.text),
        None => line.text.clone(),
    };
    match output {
        Output::Journal => {
            // Every physical line carries the priority: journald makes each its own entry.
            let prio = priority(line.level);
            for (i, part) in text.lines().enumerate() {
                if i == 0 {
                    let _ = writeln!(out, "<{prio}>{}: {part}", line.target);
                } else {
                    let _ = writeln!(out, "<{prio}>  {part}");
                }
            }
        }
        Output::Terminal { colour } => {
            let time = time.unwrap_or_default();
            if colour {
                let _ = writeln!(
                    out,
                    "\x1b[2m{time}\x1b[0m {}{:>5}\x1b[0m {}: {text}",
                    colour_of(line.level),
                    line.level.as_str(),
                    line.target
                );
            } else {
                let _ = writeln!(
                    out,
                    "{time} {:>5} {}: {text}",
                    line.level.as_str(),
                    line.target
                );
            }
        }
        Output::Plain => {
            let time = time.unwrap_or_default();
            let _ = writeln!(
                out,
                "{time} {:>5} {}: {text}",
                line.level.as_str(),
                line.target
            );
        }
    }
}

/// syslog priority of a level (sd-daemon.h `SD_ERR` … `SD_DEBUG`).
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// SGR colour of a level's name.
fn colour_of(level: Level) -> &'static str {
    match level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG => "\x1b[34m",
        _ => "\x1b[35m",
    }
}

/// The text with every run of digits replaced by `#`: two warnings that differ only in
/// numbers are copies of each other.
fn without_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
    out
}

/// An event's message and fields as `message key=value …`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl Text {
    fn of(event: &Event<'_>) -> String {
        let mut t = Text::default();
        event.record(&mut t);
        if t.message.is_empty() {
            t.fields.trim_start().to_string()
        } else {
            t.message + &t.fields
        }
    }
}

struct StderrLayer {
    shared: Arc<Shared>,
}

impl<S: Subscriber> Layer<S> for StderrLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let line = Line {
            level: *meta.level(),
            target: meta.target().to_string(),
            text: Text::of(event),
        };
        let now = Instant::now();
        let limited = matches!(line.level, Level::ERROR | Level::WARN);
        let mut lines: Vec<(Line, Option<Repeats>)> = Vec::new();
        match self.shared.limiter.lock() {
            Ok(mut limiter) => {
                lines.extend(limiter.due(now).into_iter().map(|(l, r)| (l, Some(r))));
                if !limited {
                    lines.push((line, None));
                } else {
                    let kind = (meta.callsite(), without_numbers(&line.text));
                    if let Admit::Print(repeats) = limiter.admit(kind, line.clone(), now) {
                        lines.push((line, repeats));
                    }
                }
            }
            // A thread panicked while holding the limiter: log without it rather than not at all.
            Err(_) => lines.push((line, None)),
        }
        self.shared.write(&lines);
    }
}

/// The installed output, for [`flush`].
static INSTALLED: OnceLock<Arc<Shared>> = OnceLock::new();

/// Writes the counts of warnings still held back by the rate limiter now, e.g. when a run
/// ends and before its summary. Nothing happens without [`init`].
pub fn flush() {
    if let Some(shared) = INSTALLED.get() {
        shared.flush();
    }
}

/// Keeps the logging set up; dropping it (at the end of `main`) writes the counts of warnings
/// still held back by the rate limiter.
pub struct Logging {
    shared: Option<Arc<Shared>>,
}

impl Drop for Logging {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.flush();
        }
    }
}

/// Sets up logging for a binary: the level from `ADASD_LOG` if set, else from the verbosity
/// flags; lines shaped for where stderr goes. Keep the returned guard until `main` returns.
pub fn init(verbosity: &Verbosity) -> Logging {
    let from_flags = || EnvFilter::new(verbosity.level().to_string());
    let (filter, bad_env) = match std::env::var(LOG_ENV) {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (from_flags(), Some((v, e))),
        },
        _ => (from_flags(), None),
    };
    let shared = Arc::new(Shared {
        output: Output::detect(),
        limiter: Mutex::new(RateLimiter::new(WINDOW, KINDS)),
    });
    let layer = StderrLayer {
        shared: shared.clone(),
    };
    // A second call (tests) keeps the first set-up.
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()
        .is_ok();
    if let Some((value, e)) = bad_env {
        tracing::error!(
            "{LOG_ENV}={value:?} is not a filter ({e}); logging at the -v/-q level instead (e.g. {LOG_ENV}=info, {LOG_ENV}=adas_io=debug,warn)"
        );
    }
    if installed {
        let _ = INSTALLED.set(shared.clone());
    }
    Logging {
        shared: installed.then_some(shared),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: Level, text: &str) -> Line {
        Line {
            level,
            target: "adasd::service".into(),
            text: text.into(),
        }
    }

    #[test]
    fn journal_lines_carry_the_priority_and_no_time_or_colour() {
        let mut out = String::new();
        shape(
            &mut out,
            Output::Journal,
            None,
            &line(Level::WARN, "camera lost"),
            None,
        );
        shape(
            &mut out,
            Output::Journal,
            None,
            &line(Level::ERROR, "disk full\ncause: ENOSPC"),
            None,
        );
        shape(
            &mut out,
            Output::Journal,
            None,
            &line(Level::INFO, "ready"),
            None,
        );
        shape(
            &mut out,
            Output::Journal,
            None,
            &line(Level::DEBUG, "x"),
            None,
        );
        assert_eq!(
            out,
            "<4>adasd::service: camera lost\n<3>adasd::service: disk full\n<3>  cause: ENOSPC\n\
             <6>adasd::service: ready\n<7>adasd::service: x\n"
        );
    }

    #[test]
    fn plain_lines_have_no_escape_codes_and_terminal_lines_colour_the_level() {
        let l = line(Level::WARN, "camera lost");
        let mut plain = String::new();
        shape(&mut plain, Output::Plain, Some("T"), &l, None);
        assert_eq!(plain, "T  WARN adasd::service: camera lost\n");
        let mut tty = String::new();
        shape(
            &mut tty,
            Output::Terminal { colour: true },
            Some("T"),
            &l,
            None,
        );
        assert!(tty.contains("\x1b[33m WARN\x1b[0m"), "{tty:?}");
        let mut no_color = String::new();
        shape(
            &mut no_color,
            Output::Terminal { colour: false },
            Some("T"),
            &l,
            None,
        );
        assert_eq!(no_color, plain);
    }

    #[test]
    fn a_count_follows_the_text() {
        let mut out = String::new();
        let r = Repeats {
            count: 57,
            over: Duration::from_secs(10),
        };
        shape(
            &mut out,
            Output::Journal,
            None,
            &line(Level::WARN, "skipping frame 9"),
            Some(r),
        );
        assert_eq!(
            out,
            "<4>adasd::service: skipping frame 9 (repeated 57 times in the last 10 s)\n"
        );
    }

    #[test]
    fn warnings_that_differ_only_in_numbers_are_copies() {
        assert_eq!(
            without_numbers("skipping frame 12 lost: t=3.25s"),
            without_numbers("skipping frame 13 lost: t=3.35s")
        );
        assert_ne!(
            without_numbers("cannot write can.log"),
            without_numbers("cannot write frames.jsonl")
        );
        assert_eq!(without_numbers("a 123 b4"), "a # b#");
    }
}
