//! Generates the CAN message encoders/decoders from `firmware-service/can/adas.dbc` (the single source of truth).
//!
//! The DBC is parsed with the `can-dbc` crate, checked (little-endian signals only, signals inside
//! the frame and not overlapping, classic CAN ids and DLC ≤ 8) and turned into one Rust struct per
//! message with `encode`/`decode`. A malformed DBC stops the build with an error naming the file and
//! line. The generated file is `$OUT_DIR/adas_dbc.rs`, included by `src/can/dbc.rs`.

// The clock/file-system rule (clippy.toml) is for the core's code; generating it from the DBC
// file is the one thing here that must read a file.
#![allow(clippy::disallowed_methods)]

#[path = "build/codegen.rs"]
mod codegen;

use codegen::{generate, DBC};
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed={DBC}");
    println!("cargo:rerun-if-changed=build.rs");
    if let Err(e) = run() {
        // Cargo prints a failing build script's stderr; the first line says it all.
        eprintln!("error: {e}");
        println!("cargo:warning={e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?;
    let out_dir = std::env::var("OUT_DIR").map_err(|e| e.to_string())?;
    let path = Path::new(&manifest_dir).join(DBC);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let code = generate(&text).map_err(|e| format!("{}:{e}", path.display()))?;
    std::fs::write(Path::new(&out_dir).join("adas_dbc.rs"), code)
        .map_err(|e| format!("cannot write generated code: {e}"))?;
    Ok(())
}
