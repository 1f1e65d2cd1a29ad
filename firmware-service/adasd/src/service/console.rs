//! What a run prints on stdout while it runs (the closing summary is the command's): a
//! start-up line, then either a line per frame — on a terminal, or with `--verbose` — or, into
//! a pipe or the journal, a progress line every [`PROGRESS_EVERY_NS`] of data time, so that a
//! service writes a few lines a minute instead of one per frame.

use super::events::frame_line;
use super::sinks::FrameReport;
use super::Summary;
use std::io::Write as _;

/// Data time between two progress lines: 10 s.
pub const PROGRESS_EVERY_NS: u64 = 10_000_000_000;

/// What a run prints on stdout while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Nothing (the command prints its summary at the end).
    Nothing,
    /// The start-up line, then a progress line every [`PROGRESS_EVERY_NS`] of data time.
    Progress,
    /// The start-up line, then a line per frame (processed or skipped).
    PerFrame,
}

impl Lines {
    /// `adasd run`'s choice: nothing with `-q`, a line per frame with `-v` or when stdout is a
    /// terminal, progress lines otherwise (a pipe, a file, the journal).
    pub fn for_run(verbosity: &adas_cli::Verbosity, stdout_is_terminal: bool) -> Lines {
        if verbosity.is_quiet() {
            Lines::Nothing
        } else if verbosity.is_verbose() || stdout_is_terminal {
            Lines::PerFrame
        } else {
            Lines::Progress
        }
    }
}

pub(crate) struct Console {
    lines: Lines,
    /// Data time the next progress line is due (set by the first frame).
    next_progress_ns: Option<u64>,
}

impl Console {
    pub(crate) fn new(lines: Lines) -> Console {
        Console {
            lines,
            next_progress_ns: None,
        }
    }

    /// The start-up line: what runs, from where to where.
    pub(crate) fn start(&mut self, what: impl FnOnce() -> String) {
        if self.lines != Lines::Nothing {
            self.print(what);
        }
    }

    /// After each frame, with the counters that include it.
    pub(crate) fn frame(&mut self, r: &FrameReport<'_>, summary: &Summary) {
        match self.lines {
            Lines::Nothing => {}
            Lines::PerFrame => match r.result {
                Ok((frame, outcome)) => self.print(|| frame_line(frame, outcome, r.elapsed)),
                Err(fault) => self.print(|| format!("skipped: {fault}")),
            },
            Lines::Progress => {
                if self.progress_due(r.t_ns) {
                    self.print(|| progress_line(summary));
                }
            }
        }
    }

    /// Whether a progress line is due at data time `t_ns`; the first frame starts the clock.
    fn progress_due(&mut self, t_ns: u64) -> bool {
        let next = *self
            .next_progress_ns
            .get_or_insert(t_ns.saturating_add(PROGRESS_EVERY_NS));
        if t_ns < next {
            return false;
        }
        // From this frame on, so that a gap in the data gives one line, not a burst.
        self.next_progress_ns = Some(t_ns.saturating_add(PROGRESS_EVERY_NS));
        true
    }

    /// One stdout line. A closed stdout (`adasd run … | head`) ends the lines, not the run.
    fn print(&mut self, line: impl FnOnce() -> String) {
        if let Err(e) = writeln!(std::io::stdout().lock(), "{}", line()) {
            tracing::warn!("stdout: {e}; no more lines while running");
            self.lines = Lines::Nothing;
        }
    }
}

/// One line of the run so far.
fn progress_line(s: &Summary) -> String {
    let data_s = match (s.first_t_ns, s.last_t_ns) {
        (Some(first), Some(last)) => last.saturating_sub(first) as f64 / 1e9,
        _ => 0.0,
    };
    format!(
        "progress: {data_s:.0} s of data, {} frames processed, {} skipped ({:.1} frames/s); {} warnings, braking in {} frames, AEB inhibited in {} frames",
        s.frames,
        s.skipped,
        s.fps(),
        s.warnings,
        s.braking_frames,
        s.inhibited_frames
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use adas_cli::Verbosity;

    #[test]
    fn per_frame_lines_on_a_terminal_or_when_asked_progress_otherwise() {
        let plain = Verbosity::default();
        assert_eq!(Lines::for_run(&plain, true), Lines::PerFrame);
        assert_eq!(Lines::for_run(&plain, false), Lines::Progress);
        assert_eq!(
            Lines::for_run(&Verbosity::new(1, 0), false),
            Lines::PerFrame
        );
        assert_eq!(Lines::for_run(&Verbosity::new(0, 1), true), Lines::Nothing);
    }

    #[test]
    fn a_progress_line_every_ten_seconds_of_data() {
        let mut c = Console::new(Lines::Progress);
        let s = 1_000_000_000;
        // 10 frames/s for 25 s of data, starting at 100 s.
        let due: Vec<u64> = (0..250)
            .map(|i| 100 * s + i * s / 10)
            .filter(|&t| c.progress_due(t))
            .map(|t| (t - 100 * s) / s)
            .collect();
        assert_eq!(due, [10, 20]);
        // A 60 s gap in the data: one line, then every 10 s again.
        assert!(c.progress_due(185 * s));
        assert!(!c.progress_due(186 * s));
        assert!(c.progress_due(195 * s));
    }

    #[test]
    fn the_progress_line_says_how_far_the_run_is() {
        let s = Summary {
            frames: 200,
            skipped: 3,
            warnings: 1,
            braking_frames: 4,
            first_t_ns: Some(5_000_000_000),
            last_t_ns: Some(25_000_000_000),
            ..Summary::default()
        };
        assert_eq!(
            progress_line(&s),
            "progress: 20 s of data, 200 frames processed, 3 skipped (0.0 frames/s); 1 warnings, braking in 4 frames, AEB inhibited in 0 frames"
        );
    }
}
