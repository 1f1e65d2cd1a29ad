//! The black box: keeps the last `pre` seconds of encoded frames in memory and, on every FCW or
//! braking frame, asks for them to be written, followed by everything up to `post` seconds after
//! the last such frame. Pure: the caller does the file I/O.

use super::schema::Encoded;
use std::collections::VecDeque;

/// What the caller should do with the file after pushing a frame.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Nothing to write (no event running).
    Idle,
    /// An event starts: open a file (named after `t_event_ns`) and write these frames.
    Start {
        t_event_ns: u64,
        frames: Vec<Vec<Encoded>>,
    },
    /// An event is running: write this frame.
    Write(Vec<Encoded>),
    /// Write this last frame, then close the file.
    Finish(Vec<Encoded>),
}

pub struct EventRing {
    pre_ns: u64,
    post_ns: u64,
    ring: VecDeque<(u64, Vec<Encoded>)>,
    /// Write until this time (`None`: no event running).
    until_ns: Option<u64>,
}

impl EventRing {
    pub fn new(pre_s: f64, post_s: f64) -> Self {
        let ns = |s: f64| (s.max(0.0) * 1e9) as u64;
        Self {
            pre_ns: ns(pre_s),
            post_ns: ns(post_s),
            ring: VecDeque::new(),
            until_ns: None,
        }
    }

    /// Frames held for the next event.
    pub fn buffered(&self) -> usize {
        self.ring.len()
    }

    /// One frame at `t_ns`; `event`: FCW or braking in this frame.
    pub fn push(&mut self, t_ns: u64, frame: Vec<Encoded>, event: bool) -> Step {
        match self.until_ns {
            Some(until) => {
                if event {
                    self.until_ns = Some(t_ns.saturating_add(self.post_ns));
                    Step::Write(frame)
                } else if t_ns >= until {
                    self.until_ns = None;
                    Step::Finish(frame)
                } else {
                    Step::Write(frame)
                }
            }
            None if event => {
                self.until_ns = Some(t_ns.saturating_add(self.post_ns));
                let cutoff = t_ns.saturating_sub(self.pre_ns);
                while self.ring.front().is_some_and(|(t, _)| *t < cutoff) {
                    self.ring.pop_front();
                }
                let mut frames: Vec<Vec<Encoded>> = self.ring.drain(..).map(|(_, f)| f).collect();
                frames.push(frame);
                Step::Start {
                    t_event_ns: t_ns,
                    frames,
                }
            }
            None => {
                self.ring.push_back((t_ns, frame));
                let cutoff = t_ns.saturating_sub(self.pre_ns);
                while self.ring.front().is_some_and(|(t, _)| *t < cutoff) {
                    self.ring.pop_front();
                }
                Step::Idle
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn f(t: u64) -> Vec<Encoded> {
        vec![Encoded {
            channel: 0,
            t_ns: t,
            data: vec![],
        }]
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn keeps_pre_seconds_and_writes_post_seconds_after_the_last_event() {
        let mut r = EventRing::new(2.0, 1.0);
        for i in 0..50 {
            assert_eq!(r.push(i * S / 10, f(i * S / 10), false), Step::Idle);
        }
        // 2 s before t = 5.0 s: frames at 3.0 … 4.9 s (20 frames) plus the event frame.
        match r.push(5 * S, f(5 * S), true) {
            Step::Start { t_event_ns, frames } => {
                assert_eq!(t_event_ns, 5 * S);
                assert_eq!(frames.len(), 21);
                assert_eq!(frames[0][0].t_ns, 3 * S);
            }
            other => panic!("{other:?}"),
        }
        // A second event at 5.5 s extends the window to 6.5 s.
        let mut steps = Vec::new();
        for i in 51..80 {
            steps.push(r.push(i * S / 10, f(i * S / 10), i == 55));
        }
        let finish = steps
            .iter()
            .position(|s| matches!(s, Step::Finish(_)))
            .map(|k| 51 + k as u64);
        assert_eq!(finish, Some(65));
        assert!(steps[..14].iter().all(|s| matches!(s, Step::Write(_))));
        assert!(steps[15..].iter().all(|s| matches!(s, Step::Idle)));
        assert_eq!(r.buffered(), 14);
    }
}
