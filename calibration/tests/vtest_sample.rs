//! The illustrative sample calibration in `samples/` loads and behaves plausibly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use adas_calibration::{solve_homography_refined, CalibrationFile, Rescale};

#[test]
fn vtest_sample_calibration_loads() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/vtest_calibration.toml");
    let file = CalibrationFile::load(&path).unwrap();
    assert_eq!((file.image_width, file.image_height), (768, 576));
    let h = file.for_image(768, 576, Rescale::Exact).unwrap();

    // The bottom-centre pixel is the virtual bumper; a pixel a little above it is a few metres
    // ahead, on the centre line.
    let bumper = h.project(384.0, 576.0).unwrap();
    assert!(bumper.x.abs() < 0.1 && bumper.y.abs() < 0.1, "{bumper:?}");
    let ahead = h.project(384.0, 450.0).unwrap();
    assert!(ahead.x > 1.0 && ahead.x < 6.0, "{ahead:?}");
    assert!(ahead.y.abs() < 0.5, "{ahead:?}");
    // Left of the image is left of the vehicle (y > 0).
    assert!(h.project(100.0, 450.0).unwrap().y > 0.0);
    // The top of the frame (buildings) is above the horizon or very far away.
    assert!(h.project(384.0, 0.0).map_or(true, |g| g.x > 50.0));

    // The file was made by `adas-calibrate homography` (DLT + LM) from the stored points: solving
    // again reproduces the stored homography and RMS.
    assert!(file.tool.starts_with("adas-calibrate "), "{}", file.tool);
    let fit = solve_homography_refined(&file.point_pairs()).unwrap().fit;
    assert!((fit.reprojection_rms_px - file.reprojection_rms_px.unwrap()).abs() < 1e-6);
    assert!(fit.reprojection_rms_px < 5.0);
    let stored = h.normalized();
    for (u, v) in [(384.0, 576.0), (100.0, 300.0), (700.0, 250.0)] {
        let a = stored.project(u, v).unwrap();
        let b = fit.homography.project(u, v).unwrap();
        assert!(
            a.distance_to(&b) < 1e-6 * a.x.abs().max(1.0),
            "{a:?} vs {b:?}"
        );
    }
}
