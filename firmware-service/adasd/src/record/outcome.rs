//! What `adasd replay --compare` concluded, as an exit status and as the machine-readable
//! document `--json` prints (one JSON object on stdout): for CI gates and the fleet driver
//! (`tools/fleet`), which run thousands of replays and merge their results.
//!
//! The outcome and the exit status correspond one to one (as diff(1): 0 same, 1 different,
//! 2 trouble), with 3 for a damaged recording as everywhere in `adasd`.

use adas_core::aeb::JudgedEpisode;
use adas_record::compare::{Activity, EpisodeVerdict, Report};
use adas_record::reader::Damage;
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

/// The document's `format`; `version` grows when a field changes meaning or goes away.
pub const FORMAT: &str = "adasd-replay-compare";
pub const VERSION: u32 = 1;

/// The outcome of `replay --compare`, each with its own exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    /// The replay's decisions and detections match the reference within the tolerances.
    Same,
    /// They differ beyond the tolerances (or a braking episode regressed).
    Different,
    /// No comparison: bad input, a refused reference, a config that does not load, …
    Failed,
    /// A recording (replayed or reference) was damaged: compared was what was intact.
    Damaged,
}

impl Outcome {
    /// Damage first: whatever else was found, it was found in what was intact.
    pub fn of(damaged: bool, passed: bool) -> Outcome {
        match (damaged, passed) {
            (true, _) => Outcome::Damaged,
            (false, true) => Outcome::Same,
            (false, false) => Outcome::Different,
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Same => 0,
            Outcome::Different => 1,
            Outcome::Failed => 2,
            Outcome::Damaged => super::cli::EXIT_DAMAGED,
        }
    }

    pub fn exit_status(self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }
}

/// The document `--json` prints.
#[derive(Debug, Serialize)]
pub struct Document {
    pub format: &'static str,
    pub version: u32,
    pub outcome: Outcome,
    pub exit_code: u8,
    pub adasd_version: &'static str,
    pub recording: String,
    pub reference: Option<String>,
    /// The new recording (`OUT/replay.mcap`), when the replay ran.
    pub replay: Option<String>,
    /// Why there is no comparison (`FAILED`).
    pub error: Option<String>,
    /// Parts of either recording that were skipped (`DAMAGED`).
    pub damage: Vec<DamageJson>,
    pub run: Option<RunJson>,
    pub comparison: Option<ComparisonJson>,
}

impl Document {
    /// The document of a replay that could not be compared.
    pub fn failed(recording: &Path, reference: Option<&Path>, error: &anyhow::Error) -> Document {
        Document {
            error: Some(format!("{error:#}")),
            ..Document::new(Outcome::Failed, recording, reference)
        }
    }

    pub fn new(outcome: Outcome, recording: &Path, reference: Option<&Path>) -> Document {
        Document {
            format: FORMAT,
            version: VERSION,
            outcome,
            exit_code: outcome.exit_code(),
            adasd_version: env!("CARGO_PKG_VERSION"),
            recording: recording.display().to_string(),
            reference: reference.map(|p| p.display().to_string()),
            replay: None,
            error: None,
            damage: Vec::new(),
            run: None,
            comparison: None,
        }
    }

    /// Prints the document as one line on stdout.
    pub fn print(&self) -> anyhow::Result<()> {
        crate::outln!("{}", serde_json::to_string(self)?)?;
        Ok(())
    }
}

#[derive(Debug, Serialize)]
pub struct DamageJson {
    pub file: String,
    pub what: String,
}

impl DamageJson {
    pub fn list(file: &Path, damage: &[Damage]) -> Vec<DamageJson> {
        damage
            .iter()
            .map(|d| DamageJson {
                file: file.display().to_string(),
                what: d.to_string(),
            })
            .collect()
    }
}

/// How the replay ran: frames, data time, wall time (the whole command so far).
#[derive(Debug, Serialize)]
pub struct RunJson {
    pub frames: u64,
    pub skipped: u64,
    pub data_s: f64,
    pub wall_s: f64,
    /// Data time ÷ wall time.
    pub realtime_factor: f64,
    /// Detections from the recording (`--recorded-detections`), not the detector.
    pub object_list: bool,
}

#[derive(Debug, Serialize)]
pub struct ComparisonJson {
    /// Within the tolerances (the outcome is `SAME`, or `DAMAGED` with this true).
    pub passed: bool,
    /// Every reason the comparison failed, for people.
    pub failures: Vec<String>,
    /// The earliest of the differences that fail it.
    pub first_difference: Option<DifferenceJson>,
    pub frames: FramesJson,
    pub stage_changes: StageChangesJson,
    pub target_distance: TargetDistanceJson,
    pub detections: DetectionsJson,
    /// What each run decided: warnings and braking, counted.
    pub activity: Pair<ActivityJson>,
    /// The continuous warning lead before each braking episode (docs/AEB.md), summarised.
    pub warning_lead: Pair<LeadStats>,
    pub episodes: EpisodesJson,
}

#[derive(Debug, Serialize)]
pub struct Pair<T> {
    pub reference: T,
    pub new: T,
}

#[derive(Debug, Serialize)]
pub struct DifferenceJson {
    pub t_s: f64,
    /// The frame's sequence number in the recording.
    pub frame: u64,
    /// `frame`, `stage`, `target_distance`, `detections`, `warning_lead`, `interrupted_warning`.
    pub field: &'static str,
    pub reference: String,
    pub new: String,
}

#[derive(Debug, Serialize)]
pub struct FramesJson {
    pub reference: usize,
    pub new: usize,
    pub compared: usize,
    /// Reference frames without a counterpart in the new run.
    pub missing: usize,
}

#[derive(Debug, Serialize)]
pub struct StageChangesJson {
    pub reference: usize,
    pub new: usize,
    /// Changes without a counterpart within the time tolerance.
    pub unmatched: Vec<UnmatchedJson>,
    /// Matched changes that moved in time.
    pub moved: usize,
}

#[derive(Debug, Serialize)]
pub struct UnmatchedJson {
    /// `reference` or `new`: the run that has it.
    pub only_in: &'static str,
    pub t_s: f64,
    pub frame: u64,
    pub from: &'static str,
    pub to: &'static str,
    pub target: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TargetDistanceJson {
    pub max_difference_m: f64,
    pub at_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct DetectionsJson {
    pub reference: usize,
    pub lost: usize,
    pub new: usize,
    pub rescored: usize,
    pub max_score_change: f64,
    pub max_box_shift_px: f64,
}

#[derive(Debug, Serialize)]
pub struct ActivityJson {
    pub frames: usize,
    /// Warnings raised (rising edges of FCW-or-braking).
    pub warnings: usize,
    pub warning_frames: usize,
    pub braking_episodes: usize,
    pub braking_frames: usize,
}

impl From<Activity> for ActivityJson {
    fn from(a: Activity) -> Self {
        ActivityJson {
            frames: a.frames,
            warnings: a.warnings,
            warning_frames: a.warning_frames,
            braking_episodes: a.braking_episodes,
            braking_frames: a.braking_frames,
        }
    }
}

/// The warning leads of a run's braking episodes.
#[derive(Debug, Default, Serialize)]
pub struct LeadStats {
    pub episodes: usize,
    /// Shortest, median and mean lead over every episode, s (`null` without episodes).
    pub min_s: Option<f64>,
    pub median_s: Option<f64>,
    pub mean_s: Option<f64>,
    /// Shortest lead among the episodes the 0.8 s rule applies to (not excused, not censored).
    pub min_judged_s: Option<f64>,
    /// Below 0.8 s, neither excused nor censored.
    pub short: usize,
    /// Short, but marked unanticipated by the decider.
    pub excused: usize,
    /// After a withdrawn warning (warn → clear → brake).
    pub interrupted: usize,
    /// Starting with the recording: not judged.
    pub censored: usize,
}

impl LeadStats {
    pub fn of<'a>(episodes: impl IntoIterator<Item = &'a JudgedEpisode>) -> LeadStats {
        let episodes: Vec<&JudgedEpisode> = episodes.into_iter().collect();
        let mut leads: Vec<f64> = episodes.iter().map(|e| e.lead_s()).collect();
        leads.sort_by(f64::total_cmp);
        let median = match leads.len() {
            0 => None,
            n if n % 2 == 1 => Some(leads[n / 2]),
            n => Some((leads[n / 2 - 1] + leads[n / 2]) / 2.0),
        };
        LeadStats {
            episodes: episodes.len(),
            min_s: leads.first().copied(),
            median_s: median,
            mean_s: (!leads.is_empty()).then(|| leads.iter().sum::<f64>() / leads.len() as f64),
            min_judged_s: episodes
                .iter()
                .filter(|e| e.excuse.is_none() && !e.censored)
                .map(|e| e.lead_s())
                .reduce(f64::min),
            short: episodes.iter().filter(|e| e.short_lead()).count(),
            excused: episodes.iter().filter(|e| e.excuse.is_some()).count(),
            interrupted: episodes
                .iter()
                .filter(|e| e.episode.interrupted_warning)
                .count(),
            censored: episodes.iter().filter(|e| e.censored).count(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EpisodesJson {
    pub reference: Vec<EpisodeJson>,
    pub new: Vec<EpisodeJson>,
}

/// One braking episode (docs/AEB.md, "Warning lead before braking").
#[derive(Debug, Serialize)]
pub struct EpisodeJson {
    pub onset_s: f64,
    pub duration_s: f64,
    pub ongoing: bool,
    /// The highest stage reached: `partial` or `full`.
    pub stage: &'static str,
    pub warning_lead_s: f64,
    pub short: bool,
    pub excused: bool,
    pub interrupted: bool,
    pub censored: bool,
    /// New run only: the reference episode's lead at the same onset (`null`: none there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_lead_s: Option<f64>,
    /// New run only: a short lead or withdrawn warning the reference did not have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regression: Option<bool>,
}

impl EpisodeJson {
    fn of(e: &JudgedEpisode) -> EpisodeJson {
        EpisodeJson {
            onset_s: secs(e.episode.onset_ns),
            duration_s: e.episode.duration_s(),
            ongoing: e.episode.ongoing,
            stage: e.episode.stage.as_str(),
            warning_lead_s: e.lead_s(),
            short: e.short_lead(),
            excused: e.excuse.is_some(),
            interrupted: e.episode.interrupted_warning,
            censored: e.censored,
            reference_lead_s: None,
            regression: None,
        }
    }

    fn verdict(v: &EpisodeVerdict) -> EpisodeJson {
        EpisodeJson {
            reference_lead_s: v.reference.map(|r| r.lead_s()),
            regression: Some(v.regression),
            ..EpisodeJson::of(&v.episode)
        }
    }
}

fn secs(t_ns: u64) -> f64 {
    t_ns as f64 * 1e-9
}

impl ComparisonJson {
    pub fn of(r: &Report) -> ComparisonJson {
        ComparisonJson {
            passed: r.passed(),
            failures: r.failures.clone(),
            first_difference: r.first_difference.as_ref().map(|d| DifferenceJson {
                t_s: secs(d.t_ns),
                frame: d.seq,
                field: d.field.as_str(),
                reference: d.reference.clone(),
                new: d.new.clone(),
            }),
            frames: FramesJson {
                reference: r.frames_reference,
                new: r.frames_new,
                compared: r.frames_compared,
                missing: r.frames_missing,
            },
            stage_changes: StageChangesJson {
                reference: r.changes_reference.len(),
                new: r.changes_new.len(),
                unmatched: r
                    .unmatched_changes
                    .iter()
                    .map(|(only_ref, c)| UnmatchedJson {
                        only_in: if *only_ref { "reference" } else { "new" },
                        t_s: secs(c.t_ns),
                        frame: c.seq,
                        from: c.from.as_str(),
                        to: c.stage.as_str(),
                        target: c.target.clone(),
                    })
                    .collect(),
                moved: r.moved_changes.len(),
            },
            target_distance: TargetDistanceJson {
                max_difference_m: r.max_distance_diff_m,
                at_s: r.distance_diff_at_ns.map(secs),
            },
            detections: DetectionsJson {
                reference: r.detections_reference,
                lost: r.detections_lost,
                new: r.detections_new,
                rescored: r.detections_rescored,
                max_score_change: r.max_score_diff,
                max_box_shift_px: r.max_box_shift_px,
            },
            activity: Pair {
                reference: r.activity_reference.into(),
                new: r.activity_new.into(),
            },
            warning_lead: Pair {
                reference: LeadStats::of(&r.episodes_reference),
                new: LeadStats::of(r.episodes_new.iter().map(|v| &v.episode)),
            },
            episodes: EpisodesJson {
                reference: r.episodes_reference.iter().map(EpisodeJson::of).collect(),
                new: r.episodes_new.iter().map(EpisodeJson::verdict).collect(),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use adas_core::aeb::{BrakingEpisode, Stage};

    fn episode(lead_s: f64, censored: bool) -> JudgedEpisode {
        let onset_ns = 5_000_000_000;
        JudgedEpisode {
            episode: BrakingEpisode {
                onset_index: 100,
                onset_ns,
                end_ns: onset_ns + 1_000_000_000,
                ongoing: false,
                onset_stage: Stage::PartialBrake,
                stage: Stage::FullBrake,
                warning_since_ns: onset_ns - (lead_s * 1e9).round() as u64,
                interrupted_warning: false,
                lead_censored: censored,
            },
            threat_track: Some(1),
            threat_since_ns: Some(0),
            excuse: None,
            censored,
        }
    }

    #[test]
    fn outcomes_and_exit_codes_correspond_one_to_one() {
        let all = [
            Outcome::Same,
            Outcome::Different,
            Outcome::Failed,
            Outcome::Damaged,
        ];
        let codes: Vec<u8> = all.iter().map(|o| o.exit_code()).collect();
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(Outcome::of(true, true), Outcome::Damaged);
        assert_eq!(Outcome::of(false, false), Outcome::Different);
        assert_eq!(
            serde_json::to_string(&Outcome::Different).unwrap(),
            "\"DIFFERENT\""
        );
    }

    #[test]
    fn lead_stats_summarise_every_episode_and_judge_the_uncensored() {
        let e = [
            episode(1.2, false),
            episode(0.3, false),
            episode(0.1, true),
            episode(0.9, false),
        ];
        let s = LeadStats::of(&e);
        assert_eq!((s.episodes, s.short, s.censored, s.excused), (4, 1, 1, 0));
        assert!((s.min_s.unwrap() - 0.1).abs() < 1e-9);
        assert!((s.min_judged_s.unwrap() - 0.3).abs() < 1e-9);
        assert!((s.median_s.unwrap() - 0.6).abs() < 1e-9);
        assert!((s.mean_s.unwrap() - 0.625).abs() < 1e-9);
        let none = LeadStats::of(&[]);
        assert_eq!((none.episodes, none.min_s, none.median_s), (0, None, None));
    }
}
