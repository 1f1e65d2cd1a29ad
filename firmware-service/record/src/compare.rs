//! Regression: decisions and detections of a new run against a reference recording (pure).
//!
//! Decisions are compared as *stage changes* (time, stage, target): each change of the
//! reference must have one of the same stage within `time_s` in the new run and vice versa, and
//! while both have a target its distance may differ by `distance_m` at most. Detections are
//! matched per frame by IoU (same class); lost or new detections beyond `max_detection_changes`
//! and score changes beyond `score` fail.
//!
//! Braking episodes (`adas_core::aeb::episodes`): every braking episode of the new run is reported
//! with its continuous warning lead. A regression fails: a new-run episode with a lead below
//! 0.8 s that is neither excused (the decider marked it unanticipated) nor censored, or one that
//! follows a withdrawn warning (warn → clear → brake), unless the reference has the same at the
//! same onset (within `time_s`; for a short lead, one at most `time_s` longer). What the
//! reference already did is its own finding, not this run's regression; it is counted in the
//! report.

use super::reader::RecordedFrame;
use adas_core::aeb::episodes::{judge_episodes, EpisodeFrame, JudgedEpisode};
use adas_core::aeb::Stage;
use adas_types::ImageDetection;
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

/// One stage change: at `t_ns` (frame `seq`) the stage became `stage`; the target then.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChange {
    pub t_ns: u64,
    pub seq: u64,
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
    /// Braking episodes of the reference and of the new run.
    pub episodes_reference: Vec<JudgedEpisode>,
    pub episodes_new: Vec<EpisodeVerdict>,
    /// What each run decided, counted.
    pub activity_reference: Activity,
    pub activity_new: Activity,
    /// The earliest difference among those that fail the comparison (`None` when it passed).
    pub first_difference: Option<Difference>,
    pub failures: Vec<String>,
}

/// What a run decided, counted over its frames with a decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub frames: usize,
    /// Warnings raised: rising edges of the warning (FCW, or braking, which keeps it on).
    pub warnings: usize,
    pub warning_frames: usize,
    /// Braking episodes: rising edges of braking (partial or full).
    pub braking_episodes: usize,
    pub braking_frames: usize,
}

impl Activity {
    pub fn of(frames: &[RecordedFrame]) -> Activity {
        let mut a = Activity::default();
        let (mut warned, mut braked) = (false, false);
        for f in frames {
            let Some(o) = &f.outcome else { continue };
            let stage = o.decision.decision.stage;
            let (warning, braking) = (stage >= Stage::Fcw, stage.is_braking());
            a.frames += 1;
            a.warning_frames += usize::from(warning);
            a.warnings += usize::from(warning && !warned);
            a.braking_frames += usize::from(braking);
            a.braking_episodes += usize::from(braking && !braked);
            (warned, braked) = (warning, braking);
        }
        a
    }
}

/// Which part of a decision (or of the frame) differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffField {
    /// The reference frame has no counterpart in the new run.
    Frame,
    /// The AEB stage (a stage change without a counterpart within the time tolerance).
    Stage,
    /// The distance to the decider's threat, beyond the distance tolerance.
    TargetDistance,
    /// Detections lost, new or rescored, beyond the number allowed.
    Detections,
    /// A braking episode's continuous warning lead is short where the reference's was not.
    WarningLead,
    /// Braking after a withdrawn warning where the reference had none.
    InterruptedWarning,
}

impl DiffField {
    pub fn as_str(self) -> &'static str {
        match self {
            DiffField::Frame => "frame",
            DiffField::Stage => "stage",
            DiffField::TargetDistance => "target_distance",
            DiffField::Detections => "detections",
            DiffField::WarningLead => "warning_lead",
            DiffField::InterruptedWarning => "interrupted_warning",
        }
    }
}

/// One difference: at frame `seq` (time `t_ns`), `field` was `reference` in the reference and
/// is `new` in the new run.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub t_ns: u64,
    pub seq: u64,
    pub field: DiffField,
    pub reference: String,
    pub new: String,
}

/// A new-run braking episode and how it compares with the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeVerdict {
    pub episode: JudgedEpisode,
    /// The reference episode with the same onset (within `time_s`), if any.
    pub reference: Option<JudgedEpisode>,
    /// Short lead or interrupted warning that the reference did not have.
    pub regression: bool,
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
                seq: f.seq,
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

/// Every braking episode of a recording's decisions (frames in time order), judged by what the
/// decider recorded (`Decision::unanticipated` for the excuse).
pub fn episodes(frames: &[RecordedFrame]) -> Vec<JudgedEpisode> {
    let f: Vec<EpisodeFrame> = frames
        .iter()
        .filter_map(|f| {
            let o = f.outcome.as_ref()?;
            Some(EpisodeFrame::from_decision(f.t_ns, &o.decision.decision))
        })
        .collect();
    judge_episodes(&f)
}

/// New-run episodes against the reference's (see the module docs).
fn episode_verdicts(
    reference: &[JudgedEpisode],
    new: &[JudgedEpisode],
    tol_ns: u64,
) -> Vec<EpisodeVerdict> {
    new.iter()
        .map(|e| {
            let matched = reference
                .iter()
                .filter(|r| r.episode.onset_ns.abs_diff(e.episode.onset_ns) <= tol_ns)
                .min_by_key(|r| r.episode.onset_ns.abs_diff(e.episode.onset_ns))
                .copied();
            let short_known = matched.is_some_and(|r| {
                r.short_lead() && r.lead_s() <= e.lead_s() + tol_ns as f64 * 1e-9 + 1e-9
            });
            let interrupted_known = matched.is_some_and(|r| r.episode.interrupted_warning);
            let regression = (e.short_lead() && !short_known)
                || (e.episode.interrupted_warning && !interrupted_known);
            EpisodeVerdict {
                episode: *e,
                reference: matched,
                regression,
            }
        })
        .collect()
}

/// A detection for the difference report: `car 0.87 at [x1, y1, x2, y2]`.
fn detection_text(d: &ImageDetection) -> String {
    format!(
        "{} {:.2} at [{:.0}, {:.0}, {:.0}, {:.0}]",
        d.label, d.score, d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2
    )
}

/// The stage a run decided at `t_ns`, for the difference report.
fn stage_text(frames: &std::collections::HashMap<u64, &RecordedFrame>, t_ns: u64) -> String {
    frames
        .get(&t_ns)
        .and_then(|f| f.outcome.as_ref())
        .map_or_else(
            || "no frame".to_string(),
            |o| o.decision.decision.stage.as_str().to_string(),
        )
}

/// Compares `new` against `reference` (both in time order).
pub fn compare(reference: &[RecordedFrame], new: &[RecordedFrame], tol: &Tolerances) -> Report {
    let mut r = Report {
        frames_reference: reference.iter().filter(|f| f.outcome.is_some()).count(),
        frames_new: new.iter().filter(|f| f.outcome.is_some()).count(),
        changes_reference: stage_changes(reference),
        changes_new: stage_changes(new),
        episodes_reference: episodes(reference),
        activity_reference: Activity::of(reference),
        activity_new: Activity::of(new),
        ..Default::default()
    };
    // Every difference that fails the comparison, for the earliest one.
    let mut differences: Vec<Difference> = Vec::new();
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
    r.episodes_new = episode_verdicts(&r.episodes_reference, &episodes(new), tol_ns);
    let by_t: std::collections::HashMap<u64, &RecordedFrame> =
        new.iter().map(|f| (f.t_ns, f)).collect();
    let ref_by_t: std::collections::HashMap<u64, &RecordedFrame> =
        reference.iter().map(|f| (f.t_ns, f)).collect();
    for (_, c) in &r.unmatched_changes {
        differences.push(Difference {
            t_ns: c.t_ns,
            seq: c.seq,
            field: DiffField::Stage,
            reference: stage_text(&ref_by_t, c.t_ns),
            new: stage_text(&by_t, c.t_ns),
        });
    }
    // Per frame: target distance and detections.
    let mut first_detection_change: Option<Difference> = None;
    let mut distance_over = false;
    for f in reference {
        let Some(ro) = &f.outcome else { continue };
        let Some(no) = by_t.get(&f.t_ns).and_then(|n| n.outcome.as_ref()) else {
            if r.frames_missing == 0 {
                differences.push(Difference {
                    t_ns: f.t_ns,
                    seq: f.seq,
                    field: DiffField::Frame,
                    reference: "decision".into(),
                    new: "no frame".into(),
                });
            }
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
            if d > tol.distance_m && !distance_over {
                distance_over = true;
                differences.push(Difference {
                    t_ns: f.t_ns,
                    seq: f.seq,
                    field: DiffField::TargetDistance,
                    reference: format!("{:.3} m", a.distance_m),
                    new: format!("{:.3} m", b.distance_m),
                });
            }
        }
        let (a, b) = (&ro.detections.detections, &no.detections.detections);
        r.detections_reference += a.len();
        let (pairs, lost, added) = match_detections(a, b, tol.iou);
        let mut note = |reference: String, new: String| {
            first_detection_change.get_or_insert(Difference {
                t_ns: f.t_ns,
                seq: f.seq,
                field: DiffField::Detections,
                reference,
                new,
            });
        };
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
                note(detection_text(&a[i]), detection_text(&b[j]));
                if r.detection_examples.len() < 8 {
                    r.detection_examples.push((
                        f.t_ns,
                        format!("{} score {:.3} → {:.3}", a[i].label, a[i].score, b[j].score),
                    ));
                }
            }
        }
        for &k in &lost {
            note(detection_text(&a[k]), "none (lost)".into());
        }
        for &k in &added {
            note("none".into(), detection_text(&b[k]));
        }
        for (what, list, dets) in [("lost", &lost, a), ("new", &added, b)] {
            for &k in list {
                if r.detection_examples.len() < 8 {
                    r.detection_examples
                        .push((f.t_ns, format!("{what}: {}", detection_text(&dets[k]))));
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
    for v in r.episodes_new.iter().filter(|v| v.regression) {
        let e = &v.episode;
        let t = secs(e.episode.onset_ns);
        let reference = match &v.reference {
            Some(x) => format!("reference: {:.2} s", x.lead_s()),
            None => "no such braking in the reference".into(),
        };
        let seq = |t_ns: u64| ref_by_t.get(&t_ns).or(by_t.get(&t_ns)).map_or(0, |f| f.seq);
        let reference_lead = v.reference.map_or_else(
            || "no braking".to_string(),
            |x| format!("{:.2} s", x.lead_s()),
        );
        if e.short_lead() {
            differences.push(Difference {
                t_ns: e.episode.onset_ns,
                seq: seq(e.episode.onset_ns),
                field: DiffField::WarningLead,
                reference: reference_lead.clone(),
                new: format!("{:.2} s", e.lead_s()),
            });
            r.failures.push(format!(
                "braking at t = {t:.3} s after only {:.2} s of continuous warning (< {:.1} s, not excused; {reference})",
                e.lead_s(),
                adas_core::aeb::MIN_WARNING_LEAD_S
            ));
        }
        if e.episode.interrupted_warning
            && !v.reference.is_some_and(|x| x.episode.interrupted_warning)
        {
            differences.push(Difference {
                t_ns: e.episode.onset_ns,
                seq: seq(e.episode.onset_ns),
                field: DiffField::InterruptedWarning,
                reference: if v.reference.is_some() {
                    "continuous warning".into()
                } else {
                    "no braking".into()
                },
                new: "warn → clear → brake".into(),
            });
            r.failures.push(format!(
                "braking at t = {t:.3} s after a withdrawn warning (warn → clear → brake; {})",
                if v.reference.is_some() {
                    "not so in the reference"
                } else {
                    "no such braking in the reference"
                }
            ));
        }
    }
    let changed = r.detections_lost + r.detections_new + r.detections_rescored;
    if changed > tol.max_detection_changes {
        differences.extend(first_detection_change);
        r.failures.push(format!(
            "{changed} detections changed ({} lost, {} new, {} rescored > {:.3}); {} allowed",
            r.detections_lost,
            r.detections_new,
            r.detections_rescored,
            tol.score,
            tol.max_detection_changes
        ));
    }
    // The earliest; at the same time, the order above (stage first).
    r.first_difference = differences.into_iter().min_by_key(|d| d.t_ns);
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
    let new: Vec<JudgedEpisode> = r.episodes_new.iter().map(|v| v.episode).collect();
    let _ = writeln!(
        s,
        "braking episodes, new run: {}; reference: {} ({} with a short lead, {} interrupted)",
        episode_summary(&new),
        r.episodes_reference.len(),
        r.episodes_reference
            .iter()
            .filter(|e| e.short_lead())
            .count(),
        r.episodes_reference
            .iter()
            .filter(|e| e.episode.interrupted_warning)
            .count()
    );
    for v in &r.episodes_new {
        let _ = writeln!(
            s,
            "  {}{}",
            v.episode.describe(),
            if v.regression { " — REGRESSION" } else { "" }
        );
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

/// One line on a run's braking episodes: count, shortest continuous warning lead, excused,
/// interrupted, short.
pub fn episode_summary(episodes: &[JudgedEpisode]) -> String {
    let min = episodes
        .iter()
        .map(JudgedEpisode::lead_s)
        .reduce(f64::min)
        .map_or_else(|| "–".to_string(), |v| format!("{v:.2} s"));
    format!(
        "{} (shortest warning lead {min}; {} excused, {} interrupted, {} short)",
        episodes.len(),
        episodes.iter().filter(|e| e.excuse.is_some()).count(),
        episodes
            .iter()
            .filter(|e| e.episode.interrupted_warning)
            .count(),
        episodes.iter().filter(|e| e.short_lead()).count()
    )
}

/// A run's braking episodes for people: the summary line, then one line each.
pub fn render_episodes(episodes: &[JudgedEpisode]) -> String {
    let mut s = format!("braking episodes: {}\n", episode_summary(episodes));
    for e in episodes {
        let _ = writeln!(s, "  {}", e.describe());
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::schema::{DecisionMsg, DetectionsMsg, Outcome};
    use adas_core::aeb::{Decision, Threat};
    use adas_plugins::manifest::RoadUser;

    const MS: u64 = 1_000_000;

    /// One recorded frame every 50 ms: stage, threat track (TTC 3 s, a_req 2 m/s²: avoidable).
    fn frames(stages: &[(Stage, Option<u32>)]) -> Vec<RecordedFrame> {
        stages
            .iter()
            .enumerate()
            .map(|(k, (stage, track))| {
                let t_ns = k as u64 * 50 * MS;
                let threat = track.map(|id| Threat {
                    track_id: id,
                    detection: None,
                    class: RoadUser::Car,
                    distance_m: 20.0,
                    lateral_m: 0.0,
                    closing_speed_mps: 7.0,
                    ttc_s: 3.0,
                    required_decel_mps2: 2.0,
                });
                let decision = Decision::for_test(t_ns, *stage, threat);
                RecordedFrame {
                    seq: k as u64,
                    t_ns,
                    jpeg: None,
                    outcome: Some(Outcome {
                        detections: DetectionsMsg {
                            seq: k as u64,
                            width: 1280,
                            height: 720,
                            detections: vec![],
                        },
                        bev: Default::default(),
                        tracks: vec![],
                        decision: DecisionMsg {
                            seq: k as u64,
                            ego_speed_mps: Some(10.0),
                            decision,
                        },
                    }),
                }
            })
            .collect()
    }

    /// Threat #1 throughout: `none` for `quiet` frames, FCW for `warn`, partial for 10, none.
    fn run(quiet: usize, warn: usize) -> Vec<RecordedFrame> {
        let mut s = vec![(Stage::None, Some(1)); quiet];
        s.extend(vec![(Stage::Fcw, Some(1)); warn]);
        s.extend(vec![(Stage::PartialBrake, Some(1)); 10]);
        s.extend(vec![(Stage::None, Some(1)); 5]);
        frames(&s)
    }

    fn cmp(reference: &[RecordedFrame], new: &[RecordedFrame]) -> Report {
        let tol = Tolerances {
            time_s: 2.0,
            ..Default::default()
        };
        compare(reference, new, &tol)
    }

    #[test]
    fn every_braking_episode_is_reported_with_its_lead() {
        let a = run(40, 20);
        let r = cmp(&a, &a);
        assert!(r.passed(), "{:?}", r.failures);
        assert_eq!(r.episodes_new.len(), 1);
        let e = &r.episodes_new[0];
        assert!((e.episode.lead_s() - 1.0).abs() < 1e-9);
        assert!(!e.regression && e.reference.is_some());
        let text = render_text(&r);
        assert!(
            text.contains("t=3.000s partial braking for 0.50 s, warning lead 1.00 s"),
            "{text}"
        );
    }

    #[test]
    fn a_shorter_lead_than_the_reference_is_a_regression() {
        // Same onset (t = 3 s), warning 1.0 s in the reference, 0.3 s now.
        let reference = run(40, 20);
        let new = run(54, 6);
        let r = cmp(&reference, &new);
        assert!(r.episodes_new[0].regression);
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("only 0.30 s of continuous warning")
                    && f.contains("reference: 1.00 s")),
            "{:?}",
            r.failures
        );
        assert!(render_text(&r).contains("SHORT LEAD — REGRESSION"));
        // The reference had the same short lead: reported, not a regression.
        let r = cmp(&new, &new);
        assert!(r.passed(), "{:?}", r.failures);
        assert!(r.episodes_new[0].episode.short_lead());
        assert!(render_text(&r).contains("reference: 1 (1 with a short lead"));
    }

    #[test]
    fn warn_clear_brake_is_a_regression_unless_the_reference_had_it() {
        let reference = run(40, 20);
        // FCW 1.0 s, cleared 0.2 s, partial braking at 3 s without a new warning.
        let mut s = vec![(Stage::None, Some(1)); 16];
        s.extend(vec![(Stage::Fcw, Some(1)); 20]);
        s.extend(vec![(Stage::None, Some(1)); 24]);
        s.extend(vec![(Stage::PartialBrake, Some(1)); 10]);
        s.extend(vec![(Stage::None, Some(1)); 5]);
        let new = frames(&s);
        let r = cmp(&reference, &new);
        let e = &r.episodes_new[0];
        assert!(e.episode.episode.interrupted_warning && e.regression);
        assert!(r.failures.iter().any(|f| f.contains("withdrawn warning")));
        assert!(r.failures.iter().any(|f| f.contains("only 0.00 s")));
        let r = cmp(&new, &new);
        assert!(r.passed(), "{:?}", r.failures);
    }

    #[test]
    fn braking_the_decider_marked_unanticipated_excuses_a_short_lead() {
        let reference = run(40, 20);
        // Track #2 in the path until 0.5 s before braking, then #1 (cut in): 0.3 s warning.
        let mut s = vec![(Stage::None, Some(2)); 50];
        s.extend(vec![(Stage::None, Some(1)); 4]);
        s.extend(vec![(Stage::Fcw, Some(1)); 6]);
        s.extend(vec![(Stage::PartialBrake, Some(1)); 10]);
        let mut new = frames(&s);
        // Unmarked, the cut-in is no excuse by itself.
        let r = cmp(&reference, &new);
        assert!(r.episodes_new[0].regression);
        // Marked by the decider (every frame of the episode), as a recording carries it.
        for f in &mut new {
            if let Some(o) = &mut f.outcome {
                let d = &mut o.decision.decision;
                d.unanticipated = d.stage.is_braking();
            }
        }
        let r = cmp(&reference, &new);
        let e = &r.episodes_new[0];
        assert_eq!(
            e.episode.excuse,
            Some(adas_core::aeb::Excuse::Unanticipated)
        );
        assert!(!e.regression);
        assert!(
            r.failures.iter().all(|f| !f.contains("warning")),
            "{:?}",
            r.failures
        );
    }

    #[test]
    fn braking_only_in_the_new_run_with_a_short_lead_fails() {
        let reference = frames(&vec![(Stage::None, Some(1)); 75]);
        let new = run(54, 6);
        let r = cmp(&reference, &new);
        assert!(r.episodes_new[0].reference.is_none() && r.episodes_new[0].regression);
        assert!(r
            .failures
            .iter()
            .any(|f| f.contains("no such braking in the reference")));
        assert!(render_episodes(&episodes(&new)).starts_with(
            "braking episodes: 1 (shortest warning lead 0.30 s; 0 excused, 0 interrupted, 1 short)"
        ));
    }

    #[test]
    fn the_first_difference_names_time_frame_field_and_both_values() {
        // Exact times: the warning starts 0.7 s later, so the first change has no counterpart.
        let reference = run(40, 20);
        let new = run(54, 6);
        let r = compare(&reference, &new, &Tolerances::default());
        let d = r.first_difference.clone().unwrap();
        assert_eq!((d.t_ns, d.seq, d.field), (2_000 * MS, 40, DiffField::Stage));
        assert_eq!((d.reference.as_str(), d.new.as_str()), ("fcw", "none"));
        // Within ±2 s the stage changes match: the short lead at the onset is the difference.
        let r = cmp(&reference, &new);
        let d = r.first_difference.clone().unwrap();
        assert_eq!(
            (d.t_ns, d.seq, d.field),
            (3_000 * MS, 60, DiffField::WarningLead)
        );
        assert_eq!((d.reference.as_str(), d.new.as_str()), ("1.00 s", "0.30 s"));
        // Nothing differs: none.
        assert_eq!(cmp(&reference, &reference).first_difference, None);
    }

    #[test]
    fn a_missing_frame_or_a_moved_target_is_the_first_difference_where_it_comes_first() {
        let reference = run(40, 20);
        let mut new = reference.clone();
        new.remove(10);
        let d = cmp(&reference, &new).first_difference.unwrap();
        assert_eq!((d.t_ns, d.seq, d.field), (500 * MS, 10, DiffField::Frame));
        let mut new = reference.clone();
        for f in &mut new[30..] {
            if let Some(t) = &mut f.outcome.as_mut().unwrap().decision.decision.threat {
                t.distance_m += 0.5;
            }
        }
        let r = cmp(&reference, &new);
        let d = r.first_difference.clone().unwrap();
        assert_eq!((d.t_ns, d.field), (1_500 * MS, DiffField::TargetDistance));
        assert_eq!(
            (d.reference.as_str(), d.new.as_str()),
            ("20.000 m", "20.500 m")
        );
        assert!(!r.passed());
    }

    #[test]
    fn activity_counts_warnings_and_braking_episodes_by_their_rising_edges() {
        let mut s = vec![(Stage::None, None); 5];
        s.extend(vec![(Stage::Fcw, Some(1)); 4]);
        s.extend(vec![(Stage::PartialBrake, Some(1)); 3]);
        s.extend(vec![(Stage::Fcw, Some(1)); 2]);
        s.extend(vec![(Stage::FullBrake, Some(1)); 2]);
        s.extend(vec![(Stage::None, None); 3]);
        s.extend(vec![(Stage::Fcw, Some(2)); 2]);
        let a = Activity::of(&frames(&s));
        assert_eq!(
            a,
            Activity {
                frames: 21,
                warnings: 2,
                warning_frames: 13,
                braking_episodes: 2,
                braking_frames: 5,
            }
        );
    }
}
