//! Intrinsics via OpenCV against OpenCV's own result for the same images (issue 6, item 1):
//! ../shared/media/calibration/left_intrinsics.yml (13 left*.jpg, 9×6 inner corners, 25 mm,
//! fixed aspect ratio).

#![cfg(feature = "opencv")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use adas_calibration::intrinsics::{calibrate, detect, Board, CalibrateOptions, IntrinsicsError};
use adas_calibration::load_intrinsics;

fn media() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/media/calibration");
    if p.exists() {
        Some(p)
    } else if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing (CI checks out shared/ beside the repo)",
            p.display()
        );
    } else {
        eprintln!("skipped: {} not checked out", p.display());
        None
    }
}

fn left_images(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("left") && n.ends_with(".jpg")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn matches_opencv_reference_intrinsics() {
    let Some(dir) = media() else { return };
    let images = left_images(&dir);
    assert_eq!(images.len(), 13);
    let board = Board::parse("9x6", 0.025).unwrap();
    let r = calibrate(&images, &board, CalibrateOptions { fix_aspect: true }).unwrap();
    // Reference (converted to this crate's convention: cx, cy + 0.5) and raw OpenCV values.
    let (k_ref, _) = load_intrinsics(dir.join("left_intrinsics.yml")).unwrap();
    let text = std::fs::read_to_string(dir.join("left_intrinsics.yml")).unwrap();
    let avg_ref: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("avg_reprojection_error:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
    println!(
        "fx {:.3} (ref {:.3}, {:+.3} %), fy {:.3} (ref {:.3}), cx {:.3} (ref {:.3}), cy {:.3} (ref {:.3}), \
         avg error {:.4} px (ref {avg_ref:.4}), rejected {:?}",
        r.fx,
        k_ref.fx,
        100.0 * (r.fx / k_ref.fx - 1.0),
        r.fy,
        k_ref.fy,
        r.cx,
        k_ref.cx - 0.5,
        r.cy,
        k_ref.cy - 0.5,
        r.avg_error_px,
        r.rejected
    );
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.per_image.len(), 13);
    assert!(rel(r.fx, k_ref.fx) < 0.01);
    assert!(rel(r.fy, k_ref.fy) < 0.01);
    assert!(rel(r.cx, k_ref.cx - 0.5) < 0.01);
    assert!(rel(r.cy, k_ref.cy - 0.5) < 0.01);
    assert!(
        (r.avg_error_px - avg_ref).abs() < 0.05,
        "{} vs {avg_ref}",
        r.avg_error_px
    );
    // Free aspect ratio: still within 1 % (one more parameter, error no larger).
    let free = calibrate(&images, &board, CalibrateOptions::default()).unwrap();
    assert!(rel(free.fx, k_ref.fx) < 0.01 && rel(free.fy, k_ref.fy) < 0.01);
    assert!(free.avg_error_px <= r.avg_error_px + 1e-6);
}

#[test]
fn bad_images_are_named() {
    let Some(dir) = media() else { return };
    let board = Board::parse("9x6", 0.025).unwrap();
    // Not an image.
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.jpg");
    std::fs::write(&junk, b"not a jpeg").unwrap();
    let e = calibrate(
        std::slice::from_ref(&junk),
        &board,
        CalibrateOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, IntrinsicsError::Unreadable(_)), "{e}");
    assert!(e.to_string().contains("junk.jpg"), "{e}");
    // Board not found (wrong pattern size): every image rejected and named.
    let images = left_images(&dir);
    let wrong = Board::parse("7x7", 0.025).unwrap();
    let e = calibrate(&images[..3], &wrong, CalibrateOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("left01.jpg") && msg.contains("0 of 3"),
        "{msg}"
    );
    let d = detect(&images[0], &board).unwrap();
    assert_eq!(d.size, (640, 480));
    assert_eq!(d.corners.unwrap().len(), 54);
    assert!(Board::parse("9by6", 0.025).is_err());
    assert!(Board::parse("9x6", -1.0).is_err());
}
