//! MCAP recording end to end: import → replay (bit-identical twice) → object-list replay →
//! compare → render; interrupted recordings (SIGTERM, kill -9, full disk) stay readable; bad
//! input gives clear errors; the official Python `mcap` reader validates what we write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use adas_record::Recording;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn adasd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `n` sample frames and a CAN log with 36 km/h every 20 ms (E2E protected) over them.
fn sample_inputs(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let src = Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest/frames");
    let mut names: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names.iter().take(n) {
        std::fs::copy(src.join(name), frames.join(name)).unwrap();
    }
    let can = dir.join("speed.log");
    std::fs::write(&can, common::speed_log(n as u64 * 5 + 5)).unwrap();
    (frames, can)
}

/// An imported recording of `n` frames with CAN input, made for samples/vtest.toml.
fn imported(dir: &Path, n: usize) -> PathBuf {
    let (frames, can) = sample_inputs(dir, n);
    let out = dir.join("imported.mcap");
    let config = Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest.toml");
    let o = adasd(&[
        "record",
        "import",
        "--frames",
        s(&frames),
        "--can",
        s(&can),
        "--fps",
        "10",
        "--config",
        s(&config),
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    out
}

fn replay(recording: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["replay", s(recording), "--out", s(out)];
    args.extend_from_slice(extra);
    adasd(&args)
}

/// Runs tests/mcap/validate.py; skipped (with a note) where the Python package is missing,
/// except under CI, where it must be there.
fn python_validate(files: &[&Path], truncated: bool) -> Option<String> {
    let probe = Command::new("python3")
        .args(["-c", "import mcap, google.protobuf"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: the Python mcap package is missing (pip install mcap protobuf)"
        );
        eprintln!(
            "note: python3 with the `mcap` package not found; skipping the independent check"
        );
        return None;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(Path::new(env!("ADAS_REPO_ROOT")).join("tests/mcap/validate.py"));
    if truncated {
        cmd.arg("--truncated");
    }
    let o = cmd.args(files).output().unwrap();
    assert!(o.status.success(), "python mcap validation: {}", text(&o));
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn replay_is_bit_identical_and_object_list_replay_reproduces_the_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let rec = imported(dir.path(), 12);
    let r = Recording::open(&rec).unwrap();
    assert_eq!(r.frames.len(), 12);
    assert!(r.can_rx.len() >= 55, "{} CAN frames", r.can_rx.len());
    assert!(r
        .frames
        .iter()
        .all(|f| f.jpeg.is_some() && f.outcome.is_none()));
    // The JPEGs are the sample's files, byte for byte.
    let first = std::fs::read(
        Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest/frames/frame_0000.jpg"),
    )
    .unwrap();
    assert_eq!(r.frames[0].jpeg.as_deref(), Some(first.as_slice()));

    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let o = replay(&rec, out, &[]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("replayed 12 frames"), "{}", text(&o));
    }
    // Same build + same recording → identical decisions log and identical recording, byte for byte.
    let log_a = std::fs::read(a.join("frames.jsonl")).unwrap();
    assert_eq!(log_a, std::fs::read(b.join("frames.jsonl")).unwrap());
    assert_eq!(
        std::fs::read(a.join("replay.mcap")).unwrap(),
        std::fs::read(b.join("replay.mcap")).unwrap()
    );
    let ra = Recording::open(&a.join("replay.mcap")).unwrap();
    assert!(ra.damage.is_empty(), "{:?}", ra.damage);
    assert_eq!(ra.frames.len(), 12);
    // The config is named relative to the file too, so the recording replays from anywhere.
    assert_eq!(
        std::fs::canonicalize(a.join(&ra.metadata["config_relative"])).unwrap(),
        std::fs::canonicalize(Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest.toml"))
            .unwrap()
    );
    let outcome = ra.frames[5].outcome.as_ref().unwrap();
    assert!(!outcome.detections.detections.is_empty());
    // Ego speed came from the recorded CAN input (36 km/h), not the config (20 km/h).
    assert!((outcome.decision.ego_speed_mps.unwrap() - 10.0).abs() < 0.1);
    assert!(!ra.can_tx.is_empty());

    // Object-list replay: detections from the recording → the very same decisions.
    let c = dir.path().join("c");
    let o = replay(
        &a.join("replay.mcap"),
        &c,
        &[
            "--recorded-detections",
            "--compare",
            s(&a.join("replay.mcap")),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("result: SAME"), "{}", text(&o));
    let rc = Recording::open(&c.join("replay.mcap")).unwrap();
    for (x, y) in ra.frames.iter().zip(&rc.frames) {
        assert_eq!(x.outcome, y.outcome, "t = {}", x.t_ns);
    }
    // Full replay compared with the reference: same.
    let o = replay(
        &rec,
        &dir.path().join("d"),
        &["--compare", s(&a.join("replay.mcap"))],
    );
    assert!(o.status.success(), "{}", text(&o));

    // Render: PNG frames with the picture size, and the timeline.
    let pics = dir.path().join("pics");
    let o = adasd(&["render", s(&a.join("replay.mcap")), "--out", s(&pics)]);
    assert!(o.status.success(), "{}", text(&o));
    let img = image::open(pics.join("frame_00003.png")).unwrap();
    assert_eq!((img.width(), img.height()), (768, 576));
    let tl = image::open(pics.join("timeline.png")).unwrap();
    assert!(tl.width() >= 800);

    python_validate(&[&rec, &a.join("replay.mcap")], false);
}

#[test]
fn compare_reports_changed_decisions_and_refuses_another_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let rec = imported(dir.path(), 8);
    let reference = dir.path().join("ref");
    let o = replay(&rec, &reference, &[]);
    assert!(o.status.success(), "{}", text(&o));
    // The plain replay lists its braking episodes (none in these 8 frames).
    assert!(
        text(&o).contains("braking episodes: 0 (shortest warning lead –"),
        "{}",
        text(&o)
    );
    let reference = reference.join("replay.mcap");

    // --update-reference names the config relative to the reference's folder, so the updated
    // reference replays without --config (object list) wherever the folder is.
    let refs = dir.path().join("refs");
    std::fs::create_dir_all(&refs).unwrap();
    let copy = refs.join("copy.mcap");
    std::fs::copy(&reference, &copy).unwrap();
    let o = replay(
        &rec,
        &dir.path().join("u"),
        &["--no-images", "--compare", s(&copy), "--update-reference"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let updated = Recording::open(&copy).unwrap();
    assert!(!updated.has_camera() && updated.has_outcomes());
    assert_eq!(
        std::fs::canonicalize(refs.join(&updated.metadata["config_relative"])).unwrap(),
        std::fs::canonicalize(Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest.toml"))
            .unwrap()
    );
    let o = replay(
        &copy,
        &dir.path().join("v"),
        &["--recorded-detections", "--compare", s(&reference)],
    );
    assert!(text(&o).contains("result: SAME"), "{}", text(&o));
    assert!(
        text(&o).contains("braking episodes, new run: 0"),
        "{}",
        text(&o)
    );

    // A config whose detector threshold differs: fewer detections → a readable report, exit 1.
    let config =
        std::fs::read_to_string(Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest.toml"))
            .unwrap()
            .replace(
                "backend = \"tract\"",
                "backend = \"tract\"\nscore_threshold = 0.6",
            );
    let cfg = Path::new(env!("ADAS_REPO_ROOT")).join("samples/.vtest_threshold_test.toml");
    std::fs::write(&cfg, config).unwrap();
    let o = replay(
        &rec,
        &dir.path().join("x"),
        &["--config", s(&cfg), "--compare", s(&reference)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("result: DIFFERENT") && t.contains("lost"), "{t}");
    // The same as one JSON document: the outcome, its exit status and the first difference.
    let o = replay(
        &rec,
        &dir.path().join("xj"),
        &["--config", s(&cfg), "--compare", s(&reference), "--json"],
    );
    let _ = std::fs::remove_file(&cfg);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["outcome"], "DIFFERENT");
    assert_eq!(doc["exit_code"], 1);
    let c = &doc["comparison"];
    assert_eq!(c["passed"], false);
    assert_eq!(c["first_difference"]["field"], "detections", "{doc}");
    assert_eq!(c["first_difference"]["new"], "none (lost)", "{doc}");
    assert!(c["detections"]["lost"].as_u64().unwrap() > 0);
    assert_eq!(c["activity"]["new"]["frames"], 8);
    assert_eq!(doc["run"]["frames"], 8);

    // Another calibration: refused without --force, with both hashes shown.
    let cal = std::fs::read_to_string(
        Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest_calibration.toml"),
    )
    .unwrap();
    let cal2 = dir.path().join("cal2.toml");
    std::fs::write(&cal2, format!("{cal}\n# another calibration\n")).unwrap();
    let config =
        std::fs::read_to_string(Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest.toml"))
            .unwrap()
            .replace("\"vtest_calibration.toml\"", &format!("{:?}", s(&cal2)))
            .replace(
                "../models/",
                &format!("{}/models/", Path::new(env!("ADAS_REPO_ROOT")).display()),
            );
    let cfg2 = dir.path().join("cal2.adasd.toml");
    std::fs::write(&cfg2, config).unwrap();
    let o = replay(
        &rec,
        &dir.path().join("y"),
        &["--config", s(&cfg2), "--compare", s(&reference)],
    );
    let t = text(&o);
    assert!(!o.status.success());
    assert!(
        t.contains("calibration_sha256") && t.contains("--force"),
        "{t}"
    );
    let o = replay(
        &rec,
        &dir.path().join("z"),
        &["--config", s(&cfg2), "--compare", s(&reference), "--force"],
    );
    assert!(text(&o).contains("result: SAME"), "{}", text(&o));
}

#[test]
fn replay_exit_status_and_json_document_per_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let reference = Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest.reference.mcap");
    let json = |o: &Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
    };
    // SAME: the object-list replay of the reference reproduces it; stdout is the document only.
    let o = replay(
        &reference,
        &dir.path().join("a"),
        &[
            "--recorded-detections",
            "--compare",
            s(&reference),
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc = json(&o);
    assert_eq!(doc["format"], "adasd-replay-compare");
    assert_eq!(doc["outcome"], "SAME");
    assert_eq!(
        doc["comparison"]["first_difference"],
        serde_json::Value::Null
    );
    assert_eq!(doc["comparison"]["frames"]["compared"], 40);
    assert_eq!(doc["comparison"]["warning_lead"]["new"]["episodes"], 0);
    // FAILED: no reference to compare with: status 2, the error in the document and on stderr.
    let missing = dir.path().join("missing.mcap");
    let o = replay(
        &reference,
        &dir.path().join("b"),
        &["--recorded-detections", "--compare", s(&missing), "--json"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let doc = json(&o);
    assert_eq!(doc["outcome"], "FAILED");
    assert!(
        doc["error"].as_str().unwrap().contains("missing.mcap"),
        "{doc}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.mcap"));
    // Without --json the same failure is status 2 too; --json needs --compare.
    let o = replay(
        &reference,
        &dir.path().join("c"),
        &["--recorded-detections", "--compare", s(&missing)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = replay(&reference, &dir.path().join("d"), &["--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--compare"), "{}", text(&o));
}

/// An object-list replay paced at half real time (8 s for 40 frames), recording into `out`.
fn slow_replay(rec: &Path, out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args([
            "replay",
            s(rec),
            "--out",
            s(out),
            "--recorded-detections",
            "--speed",
            "0.5",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn interrupted_recordings_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let rec = imported(dir.path(), 40);
    let full = dir.path().join("full");
    assert!(replay(&rec, &full, &[]).status.success());
    let full = full.join("replay.mcap");

    // SIGTERM: the run stops in order and the file is complete (summary + footer).
    let out = dir.path().join("term");
    let child = slow_replay(&full, &out);
    std::thread::sleep(std::time::Duration::from_millis(3000));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let r = Recording::open(&out.join("replay.mcap")).unwrap();
    assert!(r.damage.is_empty(), "{:?}", r.damage);
    assert!(
        r.frames.len() > 3 && r.frames.len() < 40,
        "{}",
        r.frames.len()
    );
    python_validate(&[&out.join("replay.mcap")], false);

    // kill -9: no footer, but every frame before the kill is there.
    let out = dir.path().join("kill");
    let mut child = slow_replay(&full, &out);
    std::thread::sleep(std::time::Duration::from_millis(3000));
    child.kill().unwrap();
    child.wait().unwrap();
    let r = Recording::open(&out.join("replay.mcap")).unwrap();
    let damage = r.damage.last().unwrap().to_string();
    assert!(damage.contains("cut off"), "{damage}");
    assert!(
        r.frames.len() > 3 && r.frames.len() < 40,
        "{}",
        r.frames.len()
    );
    assert!(r.frames.iter().all(|f| f.outcome.is_some()));
    if let Some(py) = python_validate(&[&out.join("replay.mcap")], true) {
        assert!(py.contains(&format!("frames={}", r.frames.len())), "{py}");
    }

    // Full disk: a 512 KiB tmpfs. The recording stops with a clear error, the run goes on, and
    // the file is readable up to its last complete chunk.
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs", s(&mnt)])
        .status()
        .is_ok_and(|st| st.success());
    if !mounted {
        assert!(
            std::env::var_os("CI").is_none() || std::env::var_os("ADAS_NO_MOUNT").is_some(),
            "cannot mount a tmpfs for the full-disk test (run as root, or set ADAS_NO_MOUNT=1)"
        );
        eprintln!("note: cannot mount a tmpfs (not root?); full-disk test skipped");
        return;
    }
    // The daemon itself (`adasd run`, [record] continuous into the small disk; its other
    // outputs elsewhere), on the recorded frames with the detector.
    let config = common::vtest_config(&format!("mcap://{}", full.display()))
        .replace("annotated_frames = true", "annotated_frames = false")
        + &format!(
            "\n[record]\nmode = \"continuous\"\ndir = \"{}\"\n",
            mnt.display()
        );
    let cfg = dir.path().join("disk.toml");
    std::fs::write(&cfg, config).unwrap();
    let o = adasd(&[
        "run",
        "--config",
        s(&cfg),
        "--out",
        s(&dir.path().join("disk-out")),
        "--max-frames",
        "12",
        "--quiet",
    ]);
    let files: Vec<PathBuf> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let copies: Vec<PathBuf> = files
        .iter()
        .map(|f| {
            let c = dir.path().join(f.file_name().unwrap());
            std::fs::copy(f, &c).unwrap();
            c
        })
        .collect();
    Command::new("umount").arg(&mnt).status().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("frames: 12 processed"), "{t}");
    assert!(
        t.contains("write failure(s)") && t.contains("disk full?"),
        "{t}"
    );
    assert_eq!(copies.len(), 1, "{files:?}");
    let r = Recording::open(&copies[0]).unwrap();
    assert!(!r.damage.is_empty());
    assert!(
        r.frames.len() >= 3 && r.frames.len() < 12,
        "{}",
        r.frames.len()
    );
    python_validate(&[&copies[0]], true);
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Foreign file.
    let o = adasd(&[
        "replay",
        s(&Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest/frames/frame_0000.jpg")),
        "--out",
        s(&dir.path().join("o")),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not an MCAP file"), "{}", text(&o));
    // Missing file.
    let o = adasd(&["record", "info", s(&dir.path().join("nope.mcap"))]);
    assert!(text(&o).contains("nope.mcap") && !o.status.success());

    let rec = imported(dir.path(), 4);
    let bytes = std::fs::read(&rec).unwrap();
    // Truncated in the middle of the second frame: one frame readable, with a note.
    let r = adas_record::reader::parse(&bytes[..bytes.len() / 3], &rec).unwrap();
    assert!(!r.damage.is_empty() && !r.frames.is_empty() && r.frames.len() < 4);
    // Truncated in the header: unusable.
    let err = adas_record::reader::parse(&bytes[..40], &rec).unwrap_err();
    assert!(
        err.to_string().contains("no frame in it could be read"),
        "{err}"
    );
    // Corrupt chunk (a flipped byte in a JPEG): CRC names it, the frames around it survive.
    let mut corrupt = bytes.clone();
    let k = bytes.len() * 2 / 3;
    corrupt[k] ^= 0xFF;
    let r = adas_record::reader::parse(&corrupt, &rec).unwrap();
    assert!(r.damage[0].reason.contains("CRC"), "{:?}", r.damage);
    assert_eq!(r.frames.len(), 3);

    // An imported recording has no decisions: compare and render say what to do.
    let o = adasd(&["render", s(&rec), "--out", s(&dir.path().join("p"))]);
    assert!(text(&o).contains("replay it first"), "{}", text(&o));
    // Object-list replay of it, likewise.
    let o = replay(&rec, &dir.path().join("q"), &["--recorded-detections"]);
    assert!(text(&o).contains("/adas/decision"), "{}", text(&o));

    // Out-of-order camera times.
    use adas_record::schema::{encode_frame, FrameRecord};
    let path = dir.path().join("ooo.mcap");
    let mut w = adas_record::writer::McapFile::create(&path, &Default::default(), 0).unwrap();
    for t in [0u64, 200_000_000, 100_000_000] {
        let m = encode_frame(&FrameRecord {
            seq: 0,
            t_ns: t,
            jpeg: Some(&first_jpeg()),
            outcome: None,
            can_rx: &[],
            can_tx: &[],
        })
        .unwrap();
        w.write_frame(&m).unwrap();
    }
    w.finish().unwrap();
    let o = replay(
        &path,
        &dir.path().join("r"),
        &[
            "--config",
            s(&Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest.toml")),
        ],
    );
    let t = text(&o);
    // Found half-way (the replay streams): the outputs are complete up to there, the run fails.
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("out of order") && t.contains("ooo.mcap"), "{t}");
}

/// The byte range `bytes A–B` a damage line names.
fn damaged_bytes(line: &str) -> std::ops::Range<usize> {
    let range = line
        .split("bytes ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let (a, b) = range.split_once('–').unwrap();
    a.parse().unwrap()..b.parse().unwrap()
}

#[test]
fn damaged_recordings_are_read_past_the_damage_and_fail_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("ADAS_REPO_ROOT"));
    let bytes = std::fs::read(root.join("samples/vtest.mcap")).unwrap();
    // One byte a tenth into the file: inside the JPEG of frame 3 (t = 0.3 s) of 40.
    let k = bytes.len() / 10;
    let mut damaged = bytes.clone();
    damaged[k] ^= 0xFF;
    let rec = dir.path().join("damaged.mcap");
    std::fs::write(&rec, &damaged).unwrap();

    // record info: everything else, the damage in its output and on stderr, exit status 3.
    let o = adasd(&["record", "info", s(&rec)]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    assert!(out.contains(": 39 frames, t = 0.000 … 3.900 s"), "{out}");
    let listed = out.lines().find(|l| l.contains("damaged: bytes")).unwrap();
    assert!(damaged_bytes(listed).contains(&k), "{listed} (byte {k})");
    assert!(
        listed.contains("chunk 5 of 41") && listed.contains("CRC"),
        "{listed}"
    );
    let reported: Vec<_> = err.lines().filter(|l| l.starts_with("damaged: ")).collect();
    assert_eq!(
        reported.len(),
        2,
        "one line per damaged part and the count: {err}"
    );
    assert!(reported[0].contains("damaged.mcap: bytes"), "{err}");
    assert!(reported[1].contains("1 damaged part(s) skipped"), "{err}");

    // replay: the intact frames, outputs complete, exit status 3.
    let config = root.join("samples/vtest.toml");
    let out = dir.path().join("replay");
    let o = replay(&rec, &out, &["--config", s(&config), "--to", "1.0"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("replayed 10 frames (0 skipped)"), "{t}");
    assert!(t.contains("1 damaged part(s) skipped"), "{t}");
    let replayed = Recording::open(&out.join("replay.mcap")).unwrap();
    assert!(replayed.damage.is_empty(), "{:?}", replayed.damage);
    let times: Vec<u64> = replayed
        .frames
        .iter()
        .map(|f| f.t_ns / 100_000_000)
        .collect();
    assert_eq!(times, [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(
        std::fs::read_to_string(out.join("frames.jsonl"))
            .unwrap()
            .lines()
            .count(),
        10
    );
    assert!(out.join("can.log").is_file());
    // … and the reference is not updated from it.
    let reference = dir.path().join("reference.mcap");
    std::fs::copy(out.join("replay.mcap"), &reference).unwrap();
    let o = replay(
        &rec,
        &dir.path().join("update"),
        &[
            "--config",
            s(&config),
            "--to",
            "1.0",
            "--no-images",
            "--compare",
            s(&reference),
            "--update-reference",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("reference not updated"), "{}", text(&o));
    assert_eq!(
        std::fs::read(&reference).unwrap(),
        std::fs::read(out.join("replay.mcap")).unwrap()
    );

    // render of a damaged replay: the timeline of what is intact, exit status 3.
    let mut bytes = std::fs::read(out.join("replay.mcap")).unwrap();
    let k = bytes.len() / 2;
    bytes[k] ^= 0xFF;
    let replay_damaged = dir.path().join("replay-damaged.mcap");
    std::fs::write(&replay_damaged, &bytes).unwrap();
    let pics = dir.path().join("pics");
    let o = adasd(&[
        "render",
        s(&replay_damaged),
        "--out",
        s(&pics),
        "--timeline-only",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(pics.join("timeline.png").is_file());

    // A file cut short: read up to its last complete chunk, and said so.
    let intact = std::fs::read(out.join("replay.mcap")).unwrap();
    let cut = dir.path().join("cut.mcap");
    std::fs::write(&cut, &intact[..intact.len() * 3 / 4]).unwrap();
    let o = adasd(&["record", "info", s(&cut)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("cut off"), "{}", text(&o));
}

fn first_jpeg() -> Vec<u8> {
    std::fs::read(Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest/frames/frame_0000.jpg"))
        .unwrap()
}
