//! The `adas-calibrate` binary end to end: good runs write a loadable file; bad input gives a
//! clear error naming the input, a non-zero exit and no output file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use adas_calibration::{
    CalibrationFile, FloorBoard, GroundPoint, Intrinsics, Mounting, PinholeCamera, Rescale,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adas-calibrate"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn homography_from_the_vtest_points_reproduces_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cal.toml");
    let o = run(&[
        "homography",
        "--points",
        "samples/vtest_points.toml",
        "--image-size",
        "768x576",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{so}\n{se}");
    assert!(
        so.contains("k_x = ") && so.contains("Levenberg-Marquardt"),
        "{so}"
    );
    let made = CalibrationFile::load(&out).unwrap();
    let sample = CalibrationFile::load(repo().join("samples/vtest_calibration.toml")).unwrap();
    assert_eq!(made.homography, sample.homography);
    assert_eq!(made.points, sample.points);
    made.for_image(768, 576, Rescale::Exact).unwrap();
    // The report renders from it.
    let png = dir.path().join("r.png");
    let o = run(&[
        "report",
        out.to_str().unwrap(),
        "samples/vtest/frames/frame_0000.jpg",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(image::open(&png).unwrap().width() > 768);
}

fn expect_failure(args: &[&str], out: &Path, needles: &[&str]) {
    let o = run(args);
    let (so, se) = text(&o);
    assert!(!o.status.success(), "should fail: {args:?}\n{so}");
    for n in needles {
        assert!(se.contains(n), "stderr lacks `{n}`:\n{se}");
    }
    assert!(!out.exists(), "{} written by a failed run", out.display());
}

#[test]
fn bad_point_files_are_refused_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cal.toml");
    let o = out.to_str().unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let base = |p: &str| {
        vec![
            "homography".to_string(),
            "--points".into(),
            p.to_string(),
            "--image-size".into(),
            "768x576".into(),
            "--out".into(),
            o.to_string(),
        ]
    };
    let go = |args: Vec<String>, needles: &[&str]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        expect_failure(&a, &out, needles);
    };
    let p = write("few.csv", "u,v,x,y\n1,500,2,0\n100,400,5,1\n300,300,9,-1\n");
    go(base(&p), &["few.csv", "at least 4"]);
    let p = write(
        "line.csv",
        "u,v,x,y\n100,500,2,0\n200,400,5,1\n300,300,9,-1\n400,200,15,3\n500,100,25,-2\n",
    );
    go(base(&p), &["line.csv", "collinear"]);
    let p = write(
        "dup.csv",
        "u,v,x,y\n100,500,2,0\n300,450,3,1\n300,450,9,-1\n400,200,15,3\n500,100,25,-2\n",
    );
    go(base(&p), &["dup.csv", "same image position"]);
    let p = write("nan.csv", "u,v,x,y\n100,500,2,0\n300,450,NaN,1\n");
    go(base(&p), &["nan.csv:3", "finite"]);
    let p = write("units.csv", "u,v,x_m,y_cm\n100,500,2,0\n");
    go(base(&p), &["units.csv:1", "inconsistent units"]);
    let p = write("cm.csv", "u,v,x,y\n100,500,200,0\n300,450,900,100\n");
    go(base(&p), &["cm.csv:3", "cm or mm"]);
    let p = write("out.csv", "u,v,x,y\n100,500,2,0\n900,450,9,1\n");
    go(base(&p), &["out.csv:3", "outside the 768×576 image"]);
    go(base("/nonexistent/p.csv"), &["/nonexistent/p.csv"]);
    // A point behind the camera / typed into the sky: inconsistent with a ground plane.
    let cam = camera();
    let mut rows = String::from("u,v,x,y\n");
    for (x, y) in [
        (3.0, -2.0),
        (3.0, 2.0),
        (8.0, -3.0),
        (8.0, 3.0),
        (20.0, 0.0),
        (12.0, 1.0),
    ] {
        let p = cam.project_point([x, y, 0.0]).unwrap();
        rows.push_str(&format!("{},{},{x},{y}\n", p.u, p.v));
    }
    let good = write("good.csv", &rows);
    let o2 = run(&[
        "homography",
        "--points",
        &good,
        "--image-size",
        "1280x720",
        "--out",
        o,
    ]);
    assert!(o2.status.success(), "{:?}", text(&o2));
    std::fs::remove_file(&out).unwrap();
    rows.push_str("640,5,-6,0\n");
    let p = write("behind.csv", &rows);
    let mut a = base(&p);
    a[4] = "1280x720".into();
    go(a, &["behind.csv"]);
    // Bad RANSAC threshold and a bad BEV range are refused too.
    let mut a = base(&good);
    a[4] = "1280x720".into();
    a.extend(["--ransac".into(), "0".into()]);
    go(a, &["--ransac"]);
}

fn camera() -> PinholeCamera {
    PinholeCamera::new(
        Intrinsics::from_hfov(1280.0, 720.0, 60f64.to_radians()),
        Mounting {
            x: -1.5,
            y: 0.0,
            height: 1.3,
            pitch: 6f64.to_radians(),
            yaw: 0.5f64.to_radians(),
            roll: 0.3f64.to_radians(),
        },
    )
    .unwrap()
}

#[test]
fn chessboard_on_the_floor_from_a_corner_file() {
    let cam = camera();
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec![
        "chessboard".into(),
        "--board".into(),
        "9x6".into(),
        "--square".into(),
        "0.1".into(),
        "--image-size".into(),
        "1280x720".into(),
    ];
    // Two boards: one ahead, one ahead-left and rotated.
    for (k, (x, y, yaw)) in [(3.0, -0.4, 90.0), (6.0, 1.0, 75.0)].iter().enumerate() {
        let b = FloorBoard {
            cols: 9,
            rows: 6,
            square_m: 0.1,
            origin: GroundPoint::new(*x, *y),
            yaw: f64::to_radians(*yaw),
        };
        let mut csv = String::from("u,v\n");
        for g in b.ground_corners() {
            let p = cam.project_point([g.x, g.y, 0.0]).unwrap();
            csv.push_str(&format!("{},{}\n", p.u, p.v));
        }
        let f = dir.path().join(format!("corners{k}.csv"));
        std::fs::write(&f, csv).unwrap();
        args.extend([
            "--origin".into(),
            format!("{x},{y}"),
            "--yaw".into(),
            format!("{yaw}"),
            "--corners".into(),
            f.to_str().unwrap().into(),
        ]);
    }
    let out = dir.path().join("cal.toml");
    args.extend(["--out".into(), out.to_str().unwrap().into()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&a);
    assert!(o.status.success(), "{:?}", text(&o));
    let h = CalibrationFile::load(&out).unwrap().homography().unwrap();
    let truth = cam.ground_homography().unwrap();
    for (u, v) in [(640.0, 700.0), (300.0, 500.0), (900.0, 420.0)] {
        let e = h
            .project(u, v)
            .unwrap()
            .distance_to(&truth.project(u, v).unwrap());
        assert!(e < 1e-3, "{e} m at ({u}, {v})");
    }
    // One --yaw too few: refused, nothing written.
    std::fs::remove_file(&out).unwrap();
    let last_yaw = args.iter().rposition(|a| a == "--yaw").unwrap();
    let mut short = args.clone();
    short.drain(last_yaw..last_yaw + 2);
    let a: Vec<&str> = short.iter().map(String::as_str).collect();
    expect_failure(&a, &out, &["--yaw"]);
}

#[test]
fn report_names_unreadable_images() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.jpg");
    std::fs::write(&junk, b"nope").unwrap();
    let png = dir.path().join("r.png");
    expect_failure(
        &[
            "report",
            "samples/vtest_calibration.toml",
            junk.to_str().unwrap(),
            "--out",
            png.to_str().unwrap(),
        ],
        &png,
        &["junk.jpg"],
    );
}

#[cfg(not(feature = "opencv"))]
#[test]
fn intrinsics_without_opencv_says_how_to_get_it() {
    let o = run(&["intrinsics", "--board", "9x6", "--square", "0.025", "x.jpg"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--features opencv"));
}
