//! candump log text: every line on its own, then the whole log as the CAN input replay (streamed,
//! as the daemon reads an `input_log`).
#![no_main]

use adas_io::can::{candump::parse_line, replay::CandumpReplay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = adas_fuzz::text(data) else {
        return;
    };
    for line in text.lines() {
        let _ = parse_line(line);
    }
    let path = adas_fuzz::path("fuzz.log");
    if let Ok(mut replay) = CandumpReplay::from_reader(text.as_bytes(), path, 0) {
        let _ = replay.until(u64::MAX);
        let _ = replay.stats();
    }
});
