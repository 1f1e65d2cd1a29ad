//! The `adas-calibrate` binary end to end: good runs write a loadable file; bad input gives a
//! clear error naming the input, a non-zero exit and no output file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use adas_calibration::{
    CalibrationFile, FloorBoard, GroundPoint, Intrinsics, Mounting, PinholeCamera, Rescale,
};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adas-calibrate"))
        .args(args)
        .current_dir(Path::new(env!("ADAS_REPO_ROOT")))
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
    let sample = CalibrationFile::load(
        Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest_calibration.toml"),
    )
    .unwrap();
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

#[test]
fn mounting_from_hfov_and_angles_is_the_cameras_homography() {
    let cam = camera();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cal.toml");
    let o = out.to_str().unwrap();
    let ok = run(&[
        "mounting",
        "--image-size",
        "1280x720",
        "--hfov",
        "60",
        "--height",
        "1.3",
        "--pitch",
        "6",
        "--yaw",
        "0.5",
        "--roll",
        "0.3",
        "--camera-x",
        "-1.5",
        "--out",
        o,
    ]);
    let (so, se) = text(&ok);
    assert!(ok.status.success(), "{so}\n{se}");
    // The uncertainty table of the homography, as for every calibration.
    assert!(
        so.contains("±1 px in the box bottom edge") && so.contains("k_x = "),
        "{so}"
    );
    let file = CalibrationFile::load(&out).unwrap();
    assert_eq!(file.reprojection_rms_px, None);
    assert!(file.points.is_empty());
    assert!(file
        .notes
        .as_deref()
        .unwrap_or("")
        .contains("no reprojection error"));
    let h = file.for_image(1280, 720, Rescale::Exact).unwrap();
    let truth = cam.ground_homography().unwrap();
    for (u, v) in [(640.0, 700.0), (300.0, 500.0), (900.0, 420.0)] {
        let e = h
            .project(u, v)
            .unwrap()
            .distance_to(&truth.project(u, v).unwrap());
        assert!(e < 1e-9, "{e} m at ({u}, {v})");
    }
    // The vanishing point instead of pitch and yaw gives the same file.
    std::fs::remove_file(&out).unwrap();
    let vp = cam.vanishing_point().unwrap();
    let ok = run(&[
        "mounting",
        "--image-size",
        "1280x720",
        "--hfov",
        "60",
        "--height",
        "1.3",
        "--vanishing-point",
        &format!("{},{}", vp.u, vp.v),
        "--roll",
        "0.3",
        "--camera-x=-1.5",
        "--out",
        o,
    ]);
    assert!(ok.status.success(), "{:?}", text(&ok));
    let h2 = CalibrationFile::load(&out).unwrap().homography().unwrap();
    let (a, b) = (
        h.project(640.0, 500.0).unwrap(),
        h2.project(640.0, 500.0).unwrap(),
    );
    assert!(a.distance_to(&b) < 1e-9, "{a:?} {b:?}");
}

#[test]
fn mounting_refuses_incomplete_or_contradictory_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cal.toml");
    let o = out.to_str().unwrap();
    let with = |extra: &[&'static str]| {
        let mut a = vec!["mounting", "--image-size", "1280x720", "--out", o];
        a.extend_from_slice(extra);
        a
    };
    let pose = ["--height", "1.3", "--camera-x=-1.5"];
    let angles = ["--pitch", "3", "--yaw", "0"];
    let args = with(&[&pose[..], &angles[..]].concat());
    expect_failure(&args, &out, &["--intrinsics", "--hfov"]);
    let args = with(&[&pose[..], &["--hfov", "60"]].concat());
    expect_failure(&args, &out, &["--pitch", "--vanishing-point"]);
    let args = with(
        &[
            &pose[..],
            &angles[..],
            &["--hfov", "60", "--vanishing-point", "640,300"],
        ]
        .concat(),
    );
    expect_failure(&args, &out, &["not both"]);
    let args = with(&[&pose[..], &["--hfov", "60", "--pitch", "3"]].concat());
    expect_failure(&args, &out, &["--yaw"]);
    let args = with(&[&pose[..], &angles[..], &["--hfov", "200"]].concat());
    expect_failure(&args, &out, &["--hfov 200"]);
    let args = with(
        &[
            &["--height", "0", "--camera-x=-1.5"][..],
            &angles[..],
            &["--hfov", "60"],
        ]
        .concat(),
    );
    expect_failure(&args, &out, &["height"]);
    // Looking up into the sky: the file's plausibility check names the problem.
    let args = with(&[&pose[..], &["--pitch=-30", "--yaw", "0", "--hfov", "60"]].concat());
    expect_failure(&args, &out, &["bottom-centre pixel"]);
    let args = with(
        &[
            &pose[..],
            &angles[..],
            &["--intrinsics", "/nonexistent/k.toml"],
        ]
        .concat(),
    );
    expect_failure(&args, &out, &["/nonexistent/k.toml"]);
}

#[test]
fn lanes_refuses_what_does_not_determine_the_camera() {
    let cam = camera();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cal.toml");
    let marks = dir.path().join("marks.toml");
    // The ego lane only (one dashed, one solid line), no intrinsics: under-determined.
    let px = |x: f64, y: f64| {
        let p = cam.project_point([x, y, 0.0]).unwrap();
        format!("[{}, {}]", p.u, p.v)
    };
    let mut body = String::from(
        "image_width = 1280\nimage_height = 720\n\n[[lines]]\nlateral = -0.5\ndashes = [\n",
    );
    for k in 0..3 {
        let x = 6.0 + 12.19 * f64::from(k);
        body.push_str(&format!(
            "  {{ near = {}, far = {} }},\n",
            px(x, -1.83),
            px(x + 3.05, -1.83)
        ));
    }
    body.push_str("]\n\n[[lines]]\nlateral = 0.5\npoints = [");
    body.push_str(&[5.0, 10.0, 20.0, 40.0].map(|x| px(x, 1.83)).join(", "));
    body.push_str("]\n");
    std::fs::write(&marks, &body).unwrap();
    let m = marks.to_str().unwrap();
    let o = out.to_str().unwrap();
    expect_failure(
        &["lanes", "--points", m, "--first-dash-m", "6", "--out", o],
        &out,
        &[
            "marks.toml",
            "under-determined",
            "third line",
            "--intrinsics",
        ],
    );
    // With the focal length (the camera's 60 degree lens) it is determined.
    let k = dir.path().join("k.toml");
    let i = cam.intrinsics();
    std::fs::write(
        &k,
        format!(
            "[intrinsics]\nfx = {}\nfy = {}\ncx = {}\ncy = {}\n",
            i.fx, i.fy, i.cx, i.cy
        ),
    )
    .unwrap();
    let ok = run(&[
        "lanes",
        "--points",
        m,
        "--first-dash-m",
        "6",
        "--out",
        o,
        "--intrinsics",
        k.to_str().unwrap(),
    ]);
    let (so, se) = text(&ok);
    assert!(ok.status.success(), "{so}\n{se}");
    assert!(
        so.contains("same homography: adas-calibrate mounting"),
        "{so}"
    );
    let h = CalibrationFile::load(&out).unwrap().homography().unwrap();
    let g = h.project(640.0, 600.0).unwrap();
    let t = cam
        .ground_homography()
        .unwrap()
        .project(640.0, 600.0)
        .unwrap();
    assert!(g.distance_to(&t) < 1e-3, "{g:?} vs {t:?}");
    // A broken file names the file, the line and the key; nothing is written.
    std::fs::remove_file(&out).unwrap();
    std::fs::write(&marks, body.replace("lateral = 0.5", "lateral = \"left\"")).unwrap();
    expect_failure(
        &["lanes", "--points", m, "--first-dash-m", "6", "--out", o],
        &out,
        &["marks.toml:", "lateral"],
    );
}

#[test]
fn adas_calibrate_keeps_the_conventions() {
    assert_eq!(
        adas_cli::conformance::violations(
            Path::new(env!("CARGO_BIN_EXE_adas-calibrate")),
            "adas-calibrate"
        ),
        Vec::<String>::new()
    );
}
