//! adasd: camera → detector → bird's-eye view → decision → CAN.
//!
//! The pure core (`perception`, `aeb`, `can::messages`) takes time from the data and does no
//! I/O; `source`, `detect` backends, `can::candump` and `service` are the imperative shell.

pub mod benchmark;
pub mod can;
pub mod config;
pub mod eval;
pub mod notify;
pub mod record;
pub mod render;
pub mod service;
pub mod source;
