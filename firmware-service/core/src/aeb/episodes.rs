//! Braking episodes and the warning that came before each one (pure).
//!
//! UN R152 wants the collision warning at least 0.8 s before the start of emergency braking — a
//! brake demand of 4 m/s² or more, so partial braking (`partial_brake_mps2` = 4 m/s²) counts as
//! much as full braking — unless the collision could not be anticipated in time. The scenario
//! suite and `adasd replay --compare` both judge runs with these functions, so that a simulated
//! run and a recorded drive are held to the same rule.
//!
//! # Definitions
//! Times are frame timestamps; a frame's stage holds from its time until the next frame's.
//! - **Episode**: a maximal run of consecutive braking frames (partial or full). *Onset*: the
//!   first braking frame's time. *End*: the time of the first frame after it that does not brake
//!   (when the sequence ends while braking: the last frame's time, `ongoing`). *Stage*: the
//!   highest one reached.
//! - **Continuous warning lead**: onset − the time of the first frame of the uninterrupted run of
//!   warning frames (stage ≥ FCW) that leads into the onset; 0 when braking starts from `none`.
//!   The braking stages keep the warning on, so after brake → FCW → brake the second episode's
//!   lead still counts from the first warning: the driver was never told the danger had passed.
//! - **Interrupted warning**: the warning run before this one (the run just before it, or the
//!   onset when braking started from `none`) was a warning only — it never braked — and went off
//!   less than [`INTERRUPTION_WINDOW_S`] before this run began: warn → clear → brake. Only the
//!   last run counts towards the lead; the flag marks the pattern because a withdrawn warning
//!   tells the driver the opposite of what is coming. Brake → clear → brake is not flagged: the
//!   release after braking to the target's speed, then braking again as it slows further, is
//!   how the decider follows a braking lead, and the second braking is judged by its own lead.
//!
//! # Excused episodes ([`judge_episodes`])
//! A lead below [`MIN_WARNING_LEAD_S`] is excused only where the decider itself marked the
//! episode as *unanticipated* ([`Excuse::Unanticipated`]): at the onset it started braking
//! before the warning had run its `min_warning_s`, because waiting out the rest would have
//! needed at least `unanticipated_decel_mps2` (`Decision::unanticipated`, R152's "cannot be
//! anticipated in time"). The test lives in the decider alone; this module only reads the
//! recorded flag, so a recording is judged by what the decider decided then.
//!
//! An episode is *censored* — not judged — when its warning run (or the braking) starts at the
//! first frame of the sequence: the true lead may be longer than what the sequence shows (a
//! replay window cut into it).

use super::decider::{Decision, Stage};

/// UN R152: the warning at least this long before emergency braking, s.
pub const MIN_WARNING_LEAD_S: f64 = 0.8;

/// A warning-only run that went off less than this before the next warning or braking began
/// marks that episode as interrupted, s. The decider's default `fcw_cooldown_s`: within it the
/// decider itself treats a new warning as the same situation (it holds back a new warning-only
/// episode, never a warning that braking has to wait for).
pub const INTERRUPTION_WINDOW_S: f64 = 3.0;

/// Leads are compared with this much slack, so that a lead of exactly 16 frames at 20 Hz is
/// 0.8 s and not 0.799 999 s, s.
const LEAD_EPS_S: f64 = 1e-6;

fn ns(s: f64) -> u64 {
    (s.max(0.0) * 1e9).round() as u64
}

/// One braking episode of a stage sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrakingEpisode {
    /// Index of the onset frame in the sequence.
    pub onset_index: usize,
    pub onset_ns: u64,
    /// First frame after the episode that does not brake; the last frame when `ongoing`.
    pub end_ns: u64,
    /// The sequence ended while braking.
    pub ongoing: bool,
    /// The stage at the onset (partial or full braking).
    pub onset_stage: Stage,
    /// The highest stage of the episode.
    pub stage: Stage,
    /// First frame of the uninterrupted warning run leading into the onset (= `onset_ns` when
    /// braking started from `none`).
    pub warning_since_ns: u64,
    /// A warning went off less than [`INTERRUPTION_WINDOW_S`] before this one began.
    pub interrupted_warning: bool,
    /// The warning run (or the braking) starts at the first frame: the lead may be longer.
    pub lead_censored: bool,
}

impl BrakingEpisode {
    /// Continuous warning time before the onset, s.
    pub fn warning_lead_s(&self) -> f64 {
        self.onset_ns.saturating_sub(self.warning_since_ns) as f64 * 1e-9
    }

    /// Braking time, s (up to the last frame when `ongoing`).
    pub fn duration_s(&self) -> f64 {
        self.end_ns.saturating_sub(self.onset_ns) as f64 * 1e-9
    }
}

/// Every braking episode of a stage sequence (frames in time order), in order.
pub fn braking_episodes(frames: &[(u64, Stage)]) -> Vec<BrakingEpisode> {
    let window_ns = ns(INTERRUPTION_WINDOW_S);
    let mut out: Vec<BrakingEpisode> = Vec::new();
    // Index of the first frame of the current warning run, and whether that run was preceded by
    // a recently withdrawn warning.
    let mut warn_start: Option<(usize, bool)> = None;
    let mut run_braked = false;
    // Time of the first `none` frame after the latest warning run, if that run never braked.
    let mut last_clear_ns: Option<u64> = None;
    let mut open: Option<BrakingEpisode> = None;
    for (i, &(t, stage)) in frames.iter().enumerate() {
        if stage >= Stage::Fcw {
            if warn_start.is_none() {
                let interrupted = last_clear_ns.is_some_and(|c| t.saturating_sub(c) < window_ns);
                warn_start = Some((i, interrupted));
                run_braked = false;
            }
            run_braked |= stage.is_braking();
        } else if warn_start.take().is_some() {
            last_clear_ns = (!run_braked).then_some(t);
        }
        if stage.is_braking() {
            match &mut open {
                Some(e) => e.stage = e.stage.max(stage),
                None => {
                    let (w, interrupted) = warn_start.unwrap_or((i, false));
                    let since = frames.get(w).map_or(t, |f| f.0);
                    open = Some(BrakingEpisode {
                        onset_index: i,
                        onset_ns: t,
                        end_ns: t,
                        ongoing: true,
                        onset_stage: stage,
                        stage,
                        warning_since_ns: since,
                        interrupted_warning: interrupted,
                        lead_censored: w == 0,
                    });
                }
            }
        } else if let Some(mut e) = open.take() {
            e.end_ns = t;
            e.ongoing = false;
            out.push(e);
        }
    }
    if let Some(mut e) = open {
        e.end_ns = frames.last().map_or(e.onset_ns, |f| f.0);
        out.push(e);
    }
    out
}

/// What [`judge_episodes`] needs of one frame's decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeFrame {
    pub t_ns: u64,
    pub stage: Stage,
    /// The decider's threat (track id), if any.
    pub threat_track: Option<u32>,
    /// `Decision::unanticipated`: the braking episode this frame belongs to started under the
    /// decider's "not anticipated in time" exception.
    pub unanticipated: bool,
}

impl EpisodeFrame {
    /// A decision as recorded (`t_ns`: the frame time the decision is filed under).
    pub fn from_decision(t_ns: u64, d: &Decision) -> EpisodeFrame {
        EpisodeFrame {
            t_ns,
            stage: d.stage,
            threat_track: d.threat.map(|t| t.track_id),
            unanticipated: d.unanticipated,
        }
    }
}

/// Why a short lead is accepted (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excuse {
    /// The decider started this braking episode under R152's exception: the collision could
    /// not be anticipated in time for the full warning (`Decision::unanticipated`).
    Unanticipated,
}

impl Excuse {
    pub fn as_str(self) -> &'static str {
        match self {
            Excuse::Unanticipated => "not anticipated in time",
        }
    }
}

/// An episode with what the decider saw at its onset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JudgedEpisode {
    pub episode: BrakingEpisode,
    /// The decider's threat at the onset.
    pub threat_track: Option<u32>,
    /// Since when that track had been the decider's threat without a break.
    pub threat_since_ns: Option<u64>,
    /// Set only where the lead is below [`MIN_WARNING_LEAD_S`].
    pub excuse: Option<Excuse>,
    /// The warning run is cut by the start of the sequence: not judged.
    pub censored: bool,
}

impl JudgedEpisode {
    pub fn lead_s(&self) -> f64 {
        self.episode.warning_lead_s()
    }

    /// Lead below the minimum, neither excused nor censored: a violation.
    pub fn short_lead(&self) -> bool {
        self.lead_s() < MIN_WARNING_LEAD_S - LEAD_EPS_S && self.excuse.is_none() && !self.censored
    }

    /// How long the threat had been the decider's threat at the onset, s.
    pub fn threat_age_s(&self) -> Option<f64> {
        self.threat_since_ns
            .map(|s| self.episode.onset_ns.saturating_sub(s) as f64 * 1e-9)
    }

    /// One line for reports: `t=…s partial, lead 0.95 s` plus threat, excuse and flags.
    pub fn describe(&self) -> String {
        let e = &self.episode;
        let stages = if e.onset_stage == e.stage {
            e.stage.as_str().to_string()
        } else {
            format!("{}→{}", e.onset_stage.as_str(), e.stage.as_str())
        };
        let mut s = format!(
            "t={:.3}s {stages} braking for {:.2} s{}, warning lead {:.2} s",
            e.onset_ns as f64 * 1e-9,
            e.duration_s(),
            if e.ongoing { " (ongoing)" } else { "" },
            self.lead_s()
        );
        if let (Some(id), Some(age)) = (self.threat_track, self.threat_age_s()) {
            s.push_str(&format!(", threat #{id} for {age:.2} s"));
        }
        if let Some(x) = self.excuse {
            s.push_str(&format!(", excused: {}", x.as_str()));
        }
        if e.interrupted_warning {
            s.push_str(", INTERRUPTED warning (warn → clear → brake)");
        }
        if self.censored {
            s.push_str(", censored (starts with the sequence)");
        }
        if self.short_lead() {
            s.push_str(", SHORT LEAD");
        }
        s
    }
}

/// Every braking episode of a run (frames in time order), judged against the minimum lead.
pub fn judge_episodes(frames: &[EpisodeFrame]) -> Vec<JudgedEpisode> {
    let stages: Vec<(u64, Stage)> = frames.iter().map(|f| (f.t_ns, f.stage)).collect();
    let episodes = braking_episodes(&stages);
    // For each frame, the first frame of the run of frames with the same threat track.
    let mut threat_run_start = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let start = match (i.checked_sub(1), f.threat_track) {
            (Some(p), Some(id)) if frames[p].threat_track == Some(id) => threat_run_start[p],
            _ => i,
        };
        threat_run_start.push(start);
    }
    episodes
        .into_iter()
        .map(|e| {
            let at = frames.get(e.onset_index);
            let threat_track = at.and_then(|f| f.threat_track);
            let threat_since_ns = threat_track
                .and(threat_run_start.get(e.onset_index))
                .and_then(|&k| frames.get(k))
                .map(|f| f.t_ns);
            let short = e.warning_lead_s() < MIN_WARNING_LEAD_S - LEAD_EPS_S;
            let excuse =
                (short && at.is_some_and(|f| f.unanticipated)).then_some(Excuse::Unanticipated);
            JudgedEpisode {
                episode: e,
                threat_track,
                threat_since_ns,
                excuse,
                censored: e.lead_censored,
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Stage::{FullBrake as B, None as N, PartialBrake as P};

    const F: Stage = Stage::Fcw;
    const MS: u64 = 1_000_000;

    /// Frames every 50 ms from t = 1 s.
    fn seq(stages: &[Stage]) -> Vec<(u64, Stage)> {
        stages
            .iter()
            .enumerate()
            .map(|(k, s)| (1_000 * MS + k as u64 * 50 * MS, *s))
            .collect()
    }

    fn frames(
        stages: &[Stage],
        threat: &[Option<u32>],
        unanticipated: &[bool],
    ) -> Vec<EpisodeFrame> {
        seq(stages)
            .iter()
            .enumerate()
            .map(|(k, (t, s))| EpisodeFrame {
                t_ns: *t,
                stage: *s,
                threat_track: threat.get(k).copied().flatten(),
                unanticipated: unanticipated.get(k).copied().unwrap_or(false),
            })
            .collect()
    }

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn warning_then_braking_gives_the_lead_from_the_first_warning_frame() {
        // none ×2, FCW ×17 (0.85 s), partial ×3, full ×2, none.
        let mut s = vec![N, N];
        s.extend([F; 17]);
        s.extend([P, P, P, B, B, N]);
        let e = braking_episodes(&seq(&s));
        assert_eq!(e.len(), 1);
        let e = e[0];
        assert_eq!(e.onset_index, 19);
        assert_eq!((e.onset_stage, e.stage), (P, B));
        assert!(approx(e.warning_lead_s(), 0.85), "{e:?}");
        assert!(approx(e.duration_s(), 0.25));
        assert!(!e.ongoing && !e.interrupted_warning && !e.lead_censored);
    }

    #[test]
    fn braking_from_none_has_no_lead() {
        let e = braking_episodes(&seq(&[N, N, P, P, N]));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].warning_lead_s(), 0.0);
        assert_eq!(e[0].stage, P);
        assert!(!e[0].interrupted_warning);
    }

    #[test]
    fn warn_clear_brake_counts_only_the_last_run_and_is_flagged() {
        // FCW 1.0 s, cleared 0.2 s, FCW again 0.3 s, then braking.
        let mut s = vec![N];
        s.extend([F; 20]);
        s.extend([N; 4]);
        s.extend([F; 6]);
        s.extend([P, P]);
        let e = braking_episodes(&seq(&s));
        assert_eq!(e.len(), 1);
        assert!(approx(e[0].warning_lead_s(), 0.3), "{e:?}");
        assert!(e[0].interrupted_warning);
        // Warn → clear → brake with no new warning at all.
        let mut s = vec![N];
        s.extend([F; 20]);
        s.extend([N; 4]);
        s.extend([B, B]);
        let e = braking_episodes(&seq(&s));
        assert_eq!(e[0].warning_lead_s(), 0.0);
        assert!(e[0].interrupted_warning);
    }

    #[test]
    fn a_warning_long_before_is_not_an_interruption() {
        let mut s = vec![N];
        s.extend([F; 10]);
        s.extend([N; 60]); // cleared 3 s before
        s.extend([F; 20]);
        s.push(P);
        let e = braking_episodes(&seq(&s));
        assert!(!e[0].interrupted_warning, "{e:?}");
        assert!(approx(e[0].warning_lead_s(), 1.0));
    }

    #[test]
    fn brake_clear_brake_is_not_an_interrupted_warning() {
        let mut s = vec![N];
        s.extend([F; 20]);
        s.extend([P; 10]);
        s.extend([N; 4]);
        s.extend([F; 20]);
        s.extend([P, P]);
        let e = braking_episodes(&seq(&s));
        assert_eq!(e.len(), 2);
        assert!(!e[1].interrupted_warning, "{e:?}");
        assert!(approx(e[1].warning_lead_s(), 1.0));
        // … but warn → clear after a braking episode → brake is.
        let mut s = vec![N];
        s.extend([P; 10]);
        s.extend([N; 20]);
        s.extend([F; 10]);
        s.extend([N; 4]);
        s.extend([P, P]);
        let e = braking_episodes(&seq(&s));
        assert!(
            !e[0].interrupted_warning && e[1].interrupted_warning,
            "{e:?}"
        );
    }

    #[test]
    fn brake_fcw_brake_is_two_episodes_under_one_warning() {
        let mut s = vec![N];
        s.extend([F; 20]);
        s.extend([P; 5]);
        s.extend([F; 3]);
        s.extend([P, B, B]);
        let e = braking_episodes(&seq(&s));
        assert_eq!(e.len(), 2);
        assert!(approx(e[0].warning_lead_s(), 1.0));
        assert_eq!(e[0].stage, P);
        assert_eq!(e[0].end_ns, e[0].onset_ns + 250 * MS);
        // The warning never went off: counted from the first FCW frame.
        assert!(approx(e[1].warning_lead_s(), 1.4));
        assert_eq!(e[1].stage, B);
        assert!(e[1].ongoing && !e[1].interrupted_warning);
        assert_eq!(e[1].end_ns, seq(&s).last().unwrap().0);
    }

    #[test]
    fn a_sequence_starting_in_a_warning_or_braking_is_censored() {
        let e = braking_episodes(&seq(&[F, F, P, N]));
        assert!(e[0].lead_censored);
        let e = braking_episodes(&seq(&[B, N]));
        assert!(e[0].lead_censored);
        assert!(braking_episodes(&[]).is_empty());
    }

    #[test]
    fn a_short_lead_is_excused_only_where_the_decider_marked_it_unanticipated() {
        // 40 frames of threat #1 without warning, then 0.2 s of FCW and braking.
        let mut s = vec![N; 40];
        s.extend([F; 4]);
        s.extend([P, P, N]);
        let n = s.len();
        let j = judge_episodes(&frames(&s, &vec![Some(1); n], &[]));
        assert_eq!(j.len(), 1);
        assert!(approx(j[0].lead_s(), 0.2));
        assert_eq!(j[0].excuse, None);
        assert!(j[0].short_lead(), "{j:?}");
        assert!(j[0].describe().contains("SHORT LEAD"));
        assert!(approx(j[0].threat_age_s().unwrap(), 2.2));

        // A threat that cut in 0.5 s before the onset is no excuse by itself: the decider
        // either waits for the warning or marks the braking as unanticipated.
        let mut th = vec![Some(2); n];
        for t in th.iter_mut().skip(34) {
            *t = Some(1);
        }
        let j = judge_episodes(&frames(&s, &th, &[]));
        assert!(j[0].short_lead() && j[0].excuse.is_none());
        assert!(approx(j[0].threat_age_s().unwrap(), 0.5));

        // Marked at the onset (the decider marks every frame of the episode).
        let mut un = vec![false; n];
        un[44] = true;
        un[45] = true;
        let j = judge_episodes(&frames(&s, &vec![Some(1); n], &un));
        assert_eq!(j[0].excuse, Some(Excuse::Unanticipated));
        assert!(!j[0].short_lead());
        assert!(j[0].describe().contains("excused: not anticipated in time"));
        // … but not when only a later frame is.
        let mut un = vec![false; n];
        un[45] = true;
        let j = judge_episodes(&frames(&s, &vec![Some(1); n], &un));
        assert!(j[0].short_lead());
    }

    #[test]
    fn a_long_enough_lead_needs_no_excuse() {
        let mut s = vec![N; 2];
        s.extend([F; 16]); // exactly 0.8 s
        s.extend([P, P]);
        let n = s.len();
        let j = judge_episodes(&frames(&s, &vec![Some(1); n], &vec![true; n]));
        assert!(approx(j[0].lead_s(), 0.8));
        assert_eq!(j[0].excuse, None);
        assert!(!j[0].short_lead());
    }

    #[test]
    fn only_a_warning_cut_by_the_start_of_the_sequence_is_censored() {
        let s = [F, F, P, N];
        let j = judge_episodes(&frames(&s, &[Some(1); 4], &[]));
        assert!(j[0].censored && !j[0].short_lead(), "{j:?}");
        // The threat already there at the first frame, the warning seen from its start: the
        // lead is known, and judged.
        let s = [N, N, N, F, F, F, P];
        let j = judge_episodes(&frames(&s, &[Some(1); 7], &[]));
        assert!(!j[0].censored && j[0].short_lead(), "{j:?}");
    }

    #[test]
    fn the_excuse_is_read_from_recorded_decisions() {
        use crate::aeb::decider::Threat;
        let threat = Threat {
            track_id: 3,
            detection: None,
            class: adas_plugins::manifest::RoadUser::Car,
            distance_m: 10.0,
            lateral_m: 0.0,
            closing_speed_mps: 5.0,
            ttc_s: 2.0,
            required_decel_mps2: 4.0,
        };
        let mut d = Decision::for_test(0, P, Some(threat));
        d.unanticipated = true;
        let f = EpisodeFrame::from_decision(7, &d);
        assert_eq!(
            (f.t_ns, f.stage, f.threat_track, f.unanticipated),
            (7, P, Some(3), true)
        );
        // A decision recorded before the mark existed reads as not unanticipated.
        d.unanticipated = false;
        let mut json = serde_json::to_value(d).unwrap();
        json.as_object_mut().unwrap().remove("unanticipated");
        let old: Decision = serde_json::from_value(json).unwrap();
        assert_eq!(old, d);
    }

    fn arb_stage() -> impl Strategy<Value = Stage> {
        prop_oneof![Just(N), Just(F), Just(P), Just(B)]
    }

    fn arb_frames() -> impl Strategy<Value = Vec<(u64, Stage)>> {
        proptest::collection::vec((1u64..200, arb_stage()), 0..120).prop_map(|v| {
            let mut t = 0u64;
            v.into_iter()
                .map(|(dt, s)| {
                    t += dt * MS;
                    (t, s)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Every braking frame belongs to exactly one episode and nothing else does; the lead and
        /// the interruption are what a brute-force backward scan finds, and the lead never
        /// exceeds onset − first frame.
        #[test]
        fn episodes_cover_the_braking_frames_and_leads_match_a_backward_scan(f in arb_frames()) {
            let eps = braking_episodes(&f);
            let mut covered = vec![false; f.len()];
            for e in &eps {
                prop_assert!(f[e.onset_index].1.is_braking());
                prop_assert!(e.onset_index == 0 || !f[e.onset_index - 1].1.is_braking());
                prop_assert!(e.stage.is_braking());
                let mut k = e.onset_index;
                let mut max = N;
                while k < f.len() && f[k].1.is_braking() {
                    covered[k] = true;
                    max = max.max(f[k].1);
                    k += 1;
                }
                prop_assert_eq!(e.stage, max);
                prop_assert_eq!(e.onset_stage, f[e.onset_index].1);
                prop_assert_eq!(e.ongoing, k == f.len());
                prop_assert_eq!(e.end_ns, if k == f.len() { f[k - 1].0 } else { f[k].0 });
                let mut w = e.onset_index;
                while w > 0 && f[w - 1].1 >= F {
                    w -= 1;
                }
                prop_assert_eq!(e.warning_since_ns, f[w].0);
                prop_assert_eq!(e.lead_censored, w == 0);
                // Interrupted: the previous warning run never braked and went off within the
                // window before this run began.
                let interrupted = match f[..w].iter().rposition(|x| x.1 >= F) {
                    Some(k) => {
                        let mut j = k;
                        while j > 0 && f[j - 1].1 >= F {
                            j -= 1;
                        }
                        !f[j..=k].iter().any(|x| x.1.is_braking())
                            && f[w].0 - f[k + 1].0 < ns(INTERRUPTION_WINDOW_S)
                    }
                    None => false,
                };
                prop_assert_eq!(e.interrupted_warning, interrupted);
                prop_assert!(e.warning_lead_s() <= (e.onset_ns - f[0].0) as f64 * 1e-9 + 1e-12);
                prop_assert!(e.warning_lead_s() >= 0.0);
            }
            for (k, (_, s)) in f.iter().enumerate() {
                prop_assert_eq!(covered[k], s.is_braking());
            }
            prop_assert!(eps.windows(2).all(|w| w[0].end_ns <= w[1].onset_ns));
        }

        /// No braking, no episode — whatever the warnings do.
        #[test]
        fn no_braking_no_episode(f in arb_frames()) {
            let f: Vec<(u64, Stage)> = f.into_iter().map(|(t, s)| (t, s.min(F))).collect();
            prop_assert!(braking_episodes(&f).is_empty());
        }

        /// Judging adds nothing and loses nothing; an excuse only where the lead is short.
        #[test]
        fn judging_keeps_the_episodes(f in arb_frames(), ids in proptest::collection::vec(proptest::option::of(1u32..3), 120)) {
            let frames: Vec<EpisodeFrame> = f.iter().enumerate().map(|(k, (t, s))| EpisodeFrame {
                t_ns: *t, stage: *s, threat_track: ids[k], unanticipated: k % 5 == 0,
            }).collect();
            let j = judge_episodes(&frames);
            let e = braking_episodes(&f);
            prop_assert_eq!(j.len(), e.len());
            for (a, b) in j.iter().zip(&e) {
                prop_assert_eq!(&a.episode, b);
                if a.excuse.is_some() {
                    prop_assert!(a.lead_s() < MIN_WARNING_LEAD_S);
                }
                if a.short_lead() {
                    prop_assert!(a.excuse.is_none() && !a.censored);
                }
            }
        }
    }
}
