//! The daemon's pure core: what happens to one frame's detections, free of clocks and files.
//! Time comes only from the data (monotonic ns); every function here gives the same result for
//! the same inputs, which is what makes a recorded drive replay bit-exactly.
//!
//! - [`perception`]: detections → ground plane (bird's-eye view) → tracks.
//! - [`aeb`]: tracks + ego state → corridor, threat, staged warning and braking decision.
//! - [`can`]: the CAN messages (generated from the DBC), their E2E protection, the supervision
//!   of the vehicle's inputs and the decision → message mapping.
//! - [`Core`]: the three in a row, one frame at a time — what the daemon runs and the scenario
//!   simulator drives.

pub mod aeb;
pub mod can;
pub mod perception;
mod step;

pub use step::{Core, Outcome};
