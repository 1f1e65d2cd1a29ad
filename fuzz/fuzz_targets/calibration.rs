//! The calibration file: parse, validate and build the homography, as the daemon's start does.
#![no_main]

use adas_calibration::file::CalibrationFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = adas_fuzz::text(data) else {
        return;
    };
    if let Ok(file) = CalibrationFile::from_toml_str(text, adas_fuzz::path("fuzz/calibration.toml"))
    {
        let _ = file.homography();
    }
});
