//! Regression: decisions and detections of a new run against a reference recording (pure).
//!
//! Decisions are compared as *stage changes* (time, stage, target): each change of the
//! reference must have one of the same stage within `time_s` in the new run and vice versa, and
//! while both have a target its distance may differ by `distance_m` at most. Detections are
//! matched per frame by IoU (same class); lost or new detections beyond `max_detection_changes`
//! and score changes beyond `score` fail.

use super::reader::RecordedFrame;
use crate::aeb::Stage;
use crate::detect::ImageDetection;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    /// A stage change may move by this much, s.
    pub time_s: f64,
    /// Target distance may differ by this much, m.
    pub distance_m: f64,
    /// Minimum IoU for two detections to be the same object.
    pub iou: f64,
    /// Score difference of matched detections, absolute.
    pub score: f64,
    /// Lost + new + changed detections allowed over the whole recording.
    pub max_detection_changes: usize,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            time_s: 0.0,
            distance_m: 0.05,
            iou: 0.5,
            score: 0.02,
            max_detection_changes: 0,
        }
    }
}

/// One stage change: at `t_ns` the stage became `stage`; the target then.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChange {
    pub t_ns: u64,
    pub from: Stage,
    pub stage: Stage,
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub frames_reference: usize,
    pub frames_new: usize,
    pub frames_compared: usize,
    pub changes_reference: Vec<StageChange>,
    pub changes_new: Vec<StageChange>,
    /// Stage changes without a counterpart (`true`: in the reference only).
    pub unmatched_changes: Vec<(bool, StageChange)>,
    /// Matched changes that moved in time (reference, new).
    pub moved_changes: Vec<(StageChange, StageChange)>,
    pub max_distance_diff_m: f64,
    pub distance_diff_at_ns: Option<u64>,
    pub frames_missing: usize,
    pub detections_reference: usize,
    pub detections_lost: usize,
    pub detections_new: usize,
    pub detections_rescored: usize,
    pub max_score_diff: f64,
    pub max_box_shift_px: f64,
    /// (t_ns, what) for the first differing detections, for the report.
    pub detection_examples: Vec<(u64, String)>,
    pub failures: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

fn target_text(f: &RecordedFrame) -> Option<String> {
    let d = &f.outcome.as_ref()?.decision.decision;
    d.threat.map(|t| {
        format!(
            "{} #{} at {:.1} m, TTC {}",
            t.class.as_str(),
            t.track_id,
            t.distance_m,
            if t.ttc_s.is_finite() {
                format!("{:.2} s", t.ttc_s)
            } else {
                "∞".into()
            }
        )
    })
}

/// The stage changes of a run (the first frame counts as a change from `none` only if it is
/// not `none`).
pub fn stage_changes(frames: &[RecordedFrame]) -> Vec<StageChange> {
    let mut out = Vec::new();
    let mut last = Stage::None;
    for f in frames {
        let Some(o) = &f.outcome else { continue };
        let stage = o.decision.decision.stage;
        if stage != last {
            out.push(StageChange {
                t_ns: f.t_ns,
                from: last,
                stage,
                target: target_text(f),
            });
            last = stage;
        }
    }
    out
}

/// Intersection over union of two boxes.
pub fn iou(a: &adas_plugins::BBox, b: &adas_plugins::BBox) -> f64 {
    let ix = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let iy = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = f64::from(ix * iy);
    let union = f64::from(a.width() * a.height() + b.width() * b.height()) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Greedy matching by IoU, same class: (pairs (ref, new), unmatched ref, unmatched new).
fn match_detections(
    a: &[ImageDetection],
    b: &[ImageDetection],
    min_iou: f64,
) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
    let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
    for (i, da) in a.iter().enumerate() {
        for (j, db) in b.iter().enumerate() {
            let v = iou(&da.bbox, &db.bbox);
            if da.class == db.class && v >= min_iou {
                candidates.push((v, i, j));
            }
        }
    }
    candidates.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let (mut used_a, mut used_b) = (vec![false; a.len()], vec![false; b.len()]);
    let mut pairs = Vec::new();
    for (_, i, j) in candidates {
        if !used_a[i] && !used_b[j] {
            used_a[i] = true;
            used_b[j] = true;
            pairs.push((i, j));
        }
    }
    let lost = (0..a.len()).filter(|&i| !used_a[i]).collect();
    let new = (0..b.len()).filter(|&j| !used_b[j]).collect();
    (pairs, lost, new)
}

fn secs(t_ns: u64) -> f64 {
    t_ns as f64 / 1e9
}

/// Compares `new` against `reference` (both in time order).
pub fn compare(reference: &[RecordedFrame], new: &[RecordedFrame], tol: &Tolerances) -> Report {
    let mut r = Report {
        frames_reference: reference.iter().filter(|f| f.outcome.is_some()).count(),
        frames_new: new.iter().filter(|f| f.outcome.is_some()).count(),
        changes_reference: stage_changes(reference),
        changes_new: stage_changes(new),
        ..Default::default()
    };
    // Stage changes: match each reference change to the nearest unused new one of the same
    // transition within the tolerance.
    let tol_ns = (tol.time_s.max(0.0) * 1e9) as u64;
    let mut used = vec![false; r.changes_new.len()];
    for c in &r.changes_reference {
        let best = r
            .changes_new
            .iter()
            .enumerate()
            .filter(|(k, n)| !used[*k] && n.stage == c.stage && n.from == c.from)
            .map(|(k, n)| (k, n.t_ns.abs_diff(c.t_ns)))
            .filter(|(_, d)| *d <= tol_ns)
            .min_by_key(|(_, d)| *d);
        match best {
            Some((k, d)) => {
                used[k] = true;
                if d > 0 {
                    r.moved_changes.push((c.clone(), r.changes_new[k].clone()));
                }
            }
            None => r.unmatched_changes.push((true, c.clone())),
        }
    }
    for (k, n) in r.changes_new.iter().enumerate() {
        if !used[k] {
            r.unmatched_changes.push((false, n.clone()));
        }
    }
    // Per frame: target distance and detections.
    let by_t: std::collections::HashMap<u64, &RecordedFrame> =
        new.iter().map(|f| (f.t_ns, f)).collect();
    for f in reference {
        let Some(ro) = &f.outcome else { continue };
        let Some(no) = by_t.get(&f.t_ns).and_then(|n| n.outcome.as_ref()) else {
            r.frames_missing += 1;
            continue;
        };
        r.frames_compared += 1;
        if let (Some(a), Some(b)) = (ro.decision.decision.threat, no.decision.decision.threat) {
            let d = (a.distance_m - b.distance_m).abs();
            if d > r.max_distance_diff_m {
                r.max_distance_diff_m = d;
                r.distance_diff_at_ns = Some(f.t_ns);
            }
        }
        let (a, b) = (&ro.detections.detections, &no.detections.detections);
        r.detections_reference += a.len();
        let (pairs, lost, added) = match_detections(a, b, tol.iou);
        for (i, j) in pairs {
            let ds = f64::from((a[i].score - b[j].score).abs());
            r.max_score_diff = r.max_score_diff.max(ds);
            let shift = [
                a[i].bbox.x1 - b[j].bbox.x1,
                a[i].bbox.y1 - b[j].bbox.y1,
                a[i].bbox.x2 - b[j].bbox.x2,
                a[i].bbox.y2 - b[j].bbox.y2,
            ]
            .iter()
            .fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
            r.max_box_shift_px = r.max_box_shift_px.max(shift);
            if ds > tol.score {
                r.detections_rescored += 1;
                if r.detection_examples.len() < 8 {
                    r.detection_examples.push((
                        f.t_ns,
                        format!("{} score {:.3} → {:.3}", a[i].label, a[i].score, b[j].score),
                    ));
                }
            }
        }
        for (what, list, dets) in [("lost", &lost, a), ("new", &added, b)] {
            for &k in list {
                if r.detection_examples.len() < 8 {
                    let d = &dets[k];
                    r.detection_examples.push((
                        f.t_ns,
                        format!(
                            "{what}: {} {:.2} at [{:.0}, {:.0}, {:.0}, {:.0}]",
                            d.label, d.score, d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2
                        ),
                    ));
                }
            }
        }
        r.detections_lost += lost.len();
        r.detections_new += added.len();
    }
    // Verdict.
    if r.frames_missing > 0 {
        r.failures.push(format!(
            "{} reference frames have no counterpart in the new run",
            r.frames_missing
        ));
    }
    if !r.unmatched_changes.is_empty() {
        r.failures.push(format!(
            "{} stage changes differ (beyond ±{:.2} s)",
            r.unmatched_changes.len(),
            tol.time_s
        ));
    }
    if r.max_distance_diff_m > tol.distance_m {
        r.failures.push(format!(
            "target distance differs by up to {:.3} m (at t = {:.3} s; tolerance {:.3} m)",
            r.max_distance_diff_m,
            secs(r.distance_diff_at_ns.unwrap_or(0)),
            tol.distance_m
        ));
    }
    let changed = r.detections_lost + r.detections_new + r.detections_rescored;
    if changed > tol.max_detection_changes {
        r.failures.push(format!(
            "{changed} detections changed ({} lost, {} new, {} rescored > {:.3}); {} allowed",
            r.detections_lost,
            r.detections_new,
            r.detections_rescored,
            tol.score,
            tol.max_detection_changes
        ));
    }
    r
}

/// The report for people.
pub fn render_text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "frames: reference {}, new {}, compared {}",
        r.frames_reference, r.frames_new, r.frames_compared
    );
    let line = |c: &StageChange| {
        format!(
            "t={:7.3}s {} → {}{}",
            secs(c.t_ns),
            c.from.as_str(),
            c.stage.as_str(),
            c.target
                .as_ref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        )
    };
    let _ = writeln!(
        s,
        "stage changes: reference {}, new {}",
        r.changes_reference.len(),
        r.changes_new.len()
    );
    for (only_ref, c) in &r.unmatched_changes {
        let _ = writeln!(
            s,
            "  {} {}",
            if *only_ref {
                "only in reference:"
            } else {
                "only in new run:  "
            },
            line(c)
        );
    }
    for (a, b) in &r.moved_changes {
        let _ = writeln!(
            s,
            "  moved {:+.3} s: {}",
            secs(b.t_ns) - secs(a.t_ns),
            line(a)
        );
    }
    let _ = writeln!(
        s,
        "target distance: max difference {:.3} m{}",
        r.max_distance_diff_m,
        r.distance_diff_at_ns
            .map(|t| format!(" at t = {:.3} s", secs(t)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "detections: reference {}, lost {}, new {}, rescored {}; max score change {:.4}, max box shift {:.2} px",
        r.detections_reference,
        r.detections_lost,
        r.detections_new,
        r.detections_rescored,
        r.max_score_diff,
        r.max_box_shift_px
    );
    for (t, what) in &r.detection_examples {
        let _ = writeln!(s, "  t={:7.3}s {what}", secs(*t));
    }
    if r.passed() {
        let _ = writeln!(s, "result: SAME (within tolerances)");
    } else {
        let _ = writeln!(s, "result: DIFFERENT");
        for f in &r.failures {
            let _ = writeln!(s, "  - {f}");
        }
    }
    s
}
