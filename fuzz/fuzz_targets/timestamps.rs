//! The `[source] timestamps` file (one capture time per frame); the first byte is the number of
//! frames the source has.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut header = adas_fuzz::Header::new(data);
    let frames = usize::from(header.u8());
    let Some(text) = adas_fuzz::text(header.rest()) else {
        return;
    };
    let path = adas_fuzz::path("fuzz/timestamps.txt");
    if let Ok(times) = adas_io::source::parse_timestamps(text, path, frames) {
        assert_eq!(times.len(), frames);
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    }
});
