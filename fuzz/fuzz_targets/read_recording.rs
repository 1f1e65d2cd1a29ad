//! Any bytes into the recording reader: it must return Ok or Err, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = adas_record::reader::parse(data, std::path::Path::new("fuzz.mcap"));
});
