//! Per-variant summaries over seeds, the markdown results table and the CSV time series.

use super::scenario::{Expect, Scenario};
use super::world::{judge, RunResult, Sample};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// One variant over all its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSummary {
    pub label: String,
    pub file: String,
    pub expect: Expect,
    pub seeds: usize,
    pub passed: usize,
    pub avoided: usize,
    /// Mean and max impact speed over the runs with contact, km/h.
    pub impact_mean_kph: Option<f64>,
    pub impact_max_kph: Option<f64>,
    pub fcw_median_s: Option<f64>,
    pub brake_median_s: Option<f64>,
    /// Braking episodes over all runs.
    pub episodes: usize,
    /// Smallest continuous warning lead before any braking episode of any run, s.
    pub lead_min_s: Option<f64>,
    /// The same over the episodes the 0.8 s rule applies to (not excused, not censored), s.
    pub lead_min_judged_s: Option<f64>,
    /// Episodes with a lead below 0.8 s that the rule excuses (marked unanticipated).
    pub excused: usize,
    /// Episodes whose braking followed a withdrawn warning (warn → clear → brake).
    pub interrupted: usize,
    pub min_gap_median_m: Option<f64>,
    /// Runs with any warning or braking.
    pub activated: usize,
    /// Why the first failing seed failed.
    pub first_failure: Option<(u64, String)>,
}

impl VariantSummary {
    pub fn pass_rate(&self) -> f64 {
        if self.seeds == 0 {
            0.0
        } else {
            self.passed as f64 / self.seeds as f64
        }
    }

    pub fn all_passed(&self) -> bool {
        self.passed == self.seeds
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

pub fn summarize(s: &Scenario, runs: &[RunResult]) -> VariantSummary {
    let mut passed = 0;
    let mut first_failure = None;
    for r in runs {
        match judge(s, r) {
            Ok(()) => passed += 1,
            Err(why) => {
                if first_failure.is_none() {
                    first_failure = Some((r.seed, why));
                }
            }
        }
    }
    let impacts: Vec<f64> = runs.iter().filter_map(|r| r.impact_kph()).collect();
    VariantSummary {
        label: s.label(),
        file: s
            .file
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
        expect: s.expect,
        seeds: runs.len(),
        passed,
        avoided: runs.len() - impacts.len(),
        impact_mean_kph: (!impacts.is_empty())
            .then(|| impacts.iter().sum::<f64>() / impacts.len() as f64),
        impact_max_kph: impacts.iter().copied().reduce(f64::max),
        fcw_median_s: median(runs.iter().filter_map(|r| r.first_fcw_s).collect()),
        brake_median_s: median(runs.iter().filter_map(|r| r.first_brake_s).collect()),
        episodes: runs.iter().map(|r| r.episodes.len()).sum(),
        lead_min_s: runs
            .iter()
            .filter_map(RunResult::min_warning_lead_s)
            .reduce(f64::min),
        lead_min_judged_s: runs
            .iter()
            .flat_map(|r| &r.episodes)
            .filter(|e| e.excuse.is_none() && !e.censored)
            .map(|e| e.lead_s())
            .reduce(f64::min),
        excused: runs.iter().map(RunResult::excused_episodes).sum(),
        interrupted: runs.iter().map(RunResult::interrupted_episodes).sum(),
        min_gap_median_m: median(runs.iter().map(|r| r.min_gap_m).collect()),
        activated: runs.iter().filter(|r| r.active_frames > 0).count(),
        first_failure,
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.decimals$}"))
}

/// The results table (markdown).
pub fn markdown_table(rows: &[VariantSummary]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | expect | pass | avoided | impact mean/max km/h | FCW s | brake s | braking episodes | warning lead min s (judged) | excused | interrupted | min gap m | activated |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let impact = match (r.impact_mean_kph, r.impact_max_kph) {
            (Some(m), Some(x)) => format!("{m:.1} / {x:.1}"),
            _ => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {}/{} ({:.0} %) | {}/{} | {} | {} | {} | {} | {}{} | {} | {} | {} | {}/{} |",
            r.label,
            r.expect.as_str(),
            r.passed,
            r.seeds,
            100.0 * r.pass_rate(),
            r.avoided,
            r.seeds,
            impact,
            opt(r.fcw_median_s, 2),
            opt(r.brake_median_s, 2),
            r.episodes,
            opt(r.lead_min_s, 2),
            if r.lead_min_judged_s != r.lead_min_s {
                format!(" ({})", opt(r.lead_min_judged_s, 2))
            } else {
                String::new()
            },
            r.excused,
            r.interrupted,
            opt(r.min_gap_median_m, 2),
            r.activated,
            r.seeds
        );
    }
    let total: usize = rows.iter().map(|r| r.seeds).sum();
    let passed: usize = rows.iter().map(|r| r.passed).sum();
    let _ = writeln!(
        out,
        "\n{} variants, {passed}/{total} runs passed ({:.1} %).",
        rows.len(),
        if total > 0 {
            100.0 * passed as f64 / total as f64
        } else {
            0.0
        }
    );
    for r in rows.iter().filter(|r| !r.all_passed()) {
        if let Some((seed, why)) = &r.first_failure {
            let _ = writeln!(out, "- FAIL {} ({}): seed {seed}: {why}", r.label, r.file);
        }
    }
    out
}

/// Writes the time series as CSV.
pub fn write_csv(path: &Path, samples: &[Sample]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        f,
        "t_s,ego_speed_mps,ego_decel_mps2,gap_m,stage,brake_request_mps2,ttc_s,required_decel_mps2,threat_distance_m,confirmed_tracks,detections"
    )?;
    for s in samples {
        writeln!(
            f,
            "{:.3},{:.3},{:.3},{:.3},{},{:.2},{:.3},{:.3},{:.3},{},{}",
            s.t_s,
            s.ego_speed_mps,
            s.ego_decel_mps2,
            s.gap_m,
            s.stage.as_str(),
            s.brake_request_mps2,
            s.ttc_s,
            s.required_decel_mps2,
            s.threat_distance_m,
            s.tracks,
            s.detections
        )?;
    }
    f.flush()
}

/// A file-name friendly form of a label.
pub fn slug(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}
