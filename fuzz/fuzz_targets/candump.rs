//! candump log text: every line on its own, then the whole log as the CAN input replay.
#![no_main]

use adas_io::can::{candump::parse_line, replay::CandumpReplay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = adas_fuzz::text(data) else {
        return;
    };
    text.lines().for_each(|line| drop(parse_line(line)));
    if let Ok(mut replay) = CandumpReplay::parse(text, 0) {
        let _ = replay.until(u64::MAX);
    }
});
