//! A model manifest (TOML next to the ONNX file): parse and validate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = adas_fuzz::text(data) else {
        return;
    };
    let _ = adas_plugins::manifest::Manifest::parse(text, adas_fuzz::path("fuzz/model.toml"));
});
