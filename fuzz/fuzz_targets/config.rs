//! The daemon's config file: parse, validate, resolve paths, derive the CAN supervision.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = adas_fuzz::text(data) else {
        return;
    };
    if let Ok(config) = adasd::config::Config::parse(text, adas_fuzz::path("fuzz/adas.toml")) {
        let _ = config.can.supervision();
    }
});
