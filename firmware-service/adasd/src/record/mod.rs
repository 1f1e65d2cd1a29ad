//! The `record` command line (info, replay, render, import) and a recording's identity. The
//! recording format itself is `adas-record`.

pub mod cli;
pub mod identity;
pub mod import;
pub mod outcome;
