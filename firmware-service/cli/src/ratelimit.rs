//! Repeated identical log lines, thinned out: the first of a kind is printed, copies within the
//! next window are only counted, and the count goes out with the first copy after the window
//! (or, when no copy comes, with the next log line of any kind, or at exit):
//! `… (repeated 57 times in the last 10 s)`.
//!
//! The limiter is pure: the caller passes the time, so tests run on a made-up clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How many copies of a line were held back, and over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeats {
    pub count: u64,
    /// From the printed copy that opened the window to now.
    pub over: Duration,
}

impl std::fmt::Display for Repeats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "(repeated {} time{} in the last {:.0} s)",
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.over.as_secs_f64()
        )
    }
}

/// What to do with a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Print it, with the count of the copies held back before it, if any.
    Print(Option<Repeats>),
    /// A copy within the window: counted, not printed.
    Suppress,
}

/// Per key (what makes two lines "the same"), a window opened by the printed copy; `T` is the
/// line itself, kept (the last copy) to report a count that no later copy brings.
pub struct RateLimiter<K, T> {
    window: Duration,
    capacity: usize,
    entries: HashMap<K, Entry<T>>,
}

struct Entry<T> {
    /// When the printed copy opened the window.
    since: Instant,
    suppressed: u64,
    last: Option<T>,
}

impl<K: Hash + Eq, T> RateLimiter<K, T> {
    /// `window`: how long copies are held back after a printed one; `capacity`: how many kinds
    /// are tracked at once (beyond that, new kinds are printed untracked: never lost).
    pub fn new(window: Duration, capacity: usize) -> Self {
        RateLimiter {
            window,
            capacity,
            entries: HashMap::new(),
        }
    }

    /// A line of kind `key` at `now`.
    pub fn admit(&mut self, key: K, line: T, now: Instant) -> Admit {
        if let Some(e) = self.entries.get_mut(&key) {
            let over = now.saturating_duration_since(e.since);
            if over < self.window {
                e.suppressed += 1;
                e.last = Some(line);
                return Admit::Suppress;
            }
            let repeats = (e.suppressed > 0).then_some(Repeats {
                count: e.suppressed,
                over,
            });
            *e = Entry {
                since: now,
                suppressed: 0,
                last: None,
            };
            return Admit::Print(repeats);
        }
        if self.entries.len() >= self.capacity {
            let window = self.window;
            // Expired windows with nothing held back carry no information any more.
            self.entries
                .retain(|_, e| e.suppressed > 0 || now.saturating_duration_since(e.since) < window);
        }
        if self.entries.len() < self.capacity {
            self.entries.insert(
                key,
                Entry {
                    since: now,
                    suppressed: 0,
                    last: None,
                },
            );
        }
        Admit::Print(None)
    }

    /// The counts whose window has ended without a copy to carry them: the last held-back copy
    /// of each kind with its count. Those kinds start afresh.
    pub fn due(&mut self, now: Instant) -> Vec<(T, Repeats)> {
        let window = self.window;
        self.take(|e| now.saturating_duration_since(e.since) >= window, now)
    }

    /// Every count still held back (at exit), windows ended or not.
    pub fn drain(&mut self, now: Instant) -> Vec<(T, Repeats)> {
        self.take(|_| true, now)
    }

    fn take(&mut self, pick: impl Fn(&Entry<T>) -> bool, now: Instant) -> Vec<(T, Repeats)> {
        let mut out = Vec::new();
        self.entries.retain(|_, e| {
            if e.suppressed == 0 || !pick(e) {
                return true;
            }
            if let Some(line) = e.last.take() {
                let over = now.saturating_duration_since(e.since);
                out.push((
                    line,
                    Repeats {
                        count: e.suppressed,
                        over,
                    },
                ));
            }
            false
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn copies_within_the_window_are_counted_and_reported_with_the_next_copy() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(WINDOW, 8);
        assert_eq!(l.admit("lost", 0, t0), Admit::Print(None));
        // 57 copies at 10 Hz within the window: all held back.
        for i in 1..=57 {
            assert_eq!(l.admit("lost", i, at(t0, i * 100)), Admit::Suppress, "{i}");
        }
        assert!(l.due(at(t0, 9_999)).is_empty(), "window still open");
        let r = l.admit("lost", 58, at(t0, 12_000));
        assert_eq!(
            r,
            Admit::Print(Some(Repeats {
                count: 57,
                over: Duration::from_secs(12)
            }))
        );
        if let Admit::Print(Some(r)) = r {
            assert_eq!(r.to_string(), "(repeated 57 times in the last 12 s)");
        }
        // That copy opened a new window.
        assert_eq!(l.admit("lost", 59, at(t0, 12_100)), Admit::Suppress);
    }

    #[test]
    fn kinds_are_limited_separately() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(WINDOW, 8);
        assert_eq!(l.admit("a", (), t0), Admit::Print(None));
        assert_eq!(l.admit("b", (), at(t0, 1)), Admit::Print(None));
        assert_eq!(l.admit("a", (), at(t0, 2)), Admit::Suppress);
        assert_eq!(l.admit("b", (), at(t0, 3)), Admit::Suppress);
    }

    #[test]
    fn a_count_no_copy_carries_is_due_after_the_window_with_the_last_copy() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(WINDOW, 8);
        l.admit("disk", "first", t0);
        l.admit("disk", "second", at(t0, 1_000));
        l.admit("disk", "third", at(t0, 2_000));
        assert!(l.due(at(t0, 5_000)).is_empty());
        let due = l.due(at(t0, 10_000));
        assert_eq!(
            due,
            [(
                "third",
                Repeats {
                    count: 2,
                    over: WINDOW
                }
            )]
        );
        assert!(l.due(at(t0, 20_000)).is_empty(), "reported once");
        assert_eq!(
            l.admit("disk", "again", at(t0, 20_001)),
            Admit::Print(None),
            "the kind starts afresh"
        );
    }

    #[test]
    fn at_exit_every_held_back_count_is_drained() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(WINDOW, 8);
        l.admit("a", 1, t0);
        l.admit("a", 2, at(t0, 100));
        l.admit("b", 3, t0);
        let drained = l.drain(at(t0, 500));
        assert_eq!(
            drained,
            [(
                2,
                Repeats {
                    count: 1,
                    over: Duration::from_millis(500)
                }
            )]
        );
    }

    #[test]
    fn beyond_capacity_new_kinds_are_printed_untracked_and_expired_kinds_make_room() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(WINDOW, 2);
        l.admit("a", (), t0);
        l.admit("b", (), t0);
        assert_eq!(l.admit("c", (), at(t0, 1)), Admit::Print(None));
        assert_eq!(l.admit("c", (), at(t0, 2)), Admit::Print(None), "untracked");
        // a and b expire: c is tracked now.
        assert_eq!(l.admit("c", (), at(t0, 10_000)), Admit::Print(None));
        assert_eq!(l.admit("c", (), at(t0, 10_001)), Admit::Suppress);
    }
}
