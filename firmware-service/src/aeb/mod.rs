//! Decisions: is a road user in the path ahead, and what to do about it? Pure state machines
//! fed by the tracker and the ego state; time comes only from their timestamps.
//!
//! - [`ego`]: the ego sample and its validity ([`InhibitReason`]).
//! - [`decider`]: corridor, TTC, required deceleration, staged FCW → partial → full braking.

pub mod decider;
pub mod ego;

pub use decider::{AebDecider, AebParams, Corridor, Decision, Stage, Suppression, Threat};
pub use ego::{EgoState, InhibitReason};
