//! adasd: camera → detector → bird's-eye view → decision → CAN, as a daemon and its command
//! line. The parts are crates of their own (`adas-types`, `adas-core`, `adas-detect`,
//! `adas-gpu`, `adas-record`, `adas-io`, `adas-render`); this crate maps the config onto them
//! and runs the loop.

pub mod benchmark;
pub mod check;
pub mod config;
pub mod eval;
pub mod record;
pub mod service;
