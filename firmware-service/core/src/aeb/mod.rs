//! Decisions: is a road user in the path ahead, and what to do about it? Pure state machines
//! fed by the tracker and the ego state; time comes only from their timestamps.
//!
//! - The ego sample and its validity ([`EgoState`], [`InhibitReason`]) come from `adas-types`.
//! - [`decider`]: corridor, TTC, required deceleration, staged FCW → partial → full braking.
//! - [`episodes`]: a run's braking episodes and the continuous warning before each (UN R152's
//!   0.8 s), judged the same way for simulated runs and recordings.

pub mod decider;
pub mod episodes;

pub use adas_types::{EgoState, InhibitReason};
pub use decider::{AebDecider, AebParams, Corridor, Decision, Stage, Suppression, Threat};
pub use episodes::{
    braking_episodes, judge_episodes, BrakingEpisode, EpisodeFrame, Excuse, JudgedEpisode,
    MIN_WARNING_LEAD_S,
};
