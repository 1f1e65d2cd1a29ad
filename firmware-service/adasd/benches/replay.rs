//! Replay speed and recording overhead (issue 7), as figures: timing lives here, never in
//! pass/fail tests.
//!
//! `cargo bench -p adasd --bench replay` times the `adasd replay` command itself (start-up
//! included: opening the recording, config, pipeline, writing replay.mcap + frames.jsonl +
//! can.log) on the wall clock:
//! - with the detector on the CPU (the config's backend, tract) over `samples/vtest.mcap`;
//! - object-list replays (`--recorded-detections`) of that replay's output (JPEGs passed through
//!   into the new recording), of the same without images, and of a long recording made by
//!   repeating its frames (`LONG_REPEATS` × 40 frames) to separate start-up from per-frame time;
//! - the recorder's encode and write time per frame, with and without the car's fsync.

use adas_record::compare::Tolerances;
use adas_record::schema::{encode_frame, FrameRecord};
use adas_record::writer::McapFile;
use adas_record::Recording;
use adasd::record::cli::{self, Replay};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Object-list runs per input (the median is reported).
const RUNS: usize = 5;
/// The long recording: the sample's frames this many times over.
const LONG_REPEATS: u64 = 75;
/// Frames encoded and written for the recording overhead.
const OVERHEAD_FRAMES: usize = 2000;

struct Figure {
    what: String,
    frames: usize,
    data_s: f64,
    wall_s: f64,
}

impl Figure {
    fn print(&self) {
        println!(
            "{:<58} {:>6} frames {:>7.1} s data  {:>8.3} s wall  {:>9.1} frames/s  {:>8.1}× real time",
            self.what,
            self.frames,
            self.data_s,
            self.wall_s,
            self.frames as f64 / self.wall_s,
            self.data_s / self.wall_s
        );
    }
}

fn replay_args(recording: &Path, config: &Path, out: &Path, object_list: bool) -> Replay {
    Replay {
        recording: recording.to_path_buf(),
        config: Some(config.to_path_buf()),
        from_s: None,
        to_s: None,
        speed: "max".into(),
        out: out.to_path_buf(),
        recorded_detections: object_list,
        backend: None,
        compare: None,
        update_reference: false,
        force: false,
        tolerances: Tolerances::default(),
        frames: false,
        verbose: false,
        no_images: false,
        json: false,
    }
}

/// Frames and data time (first to last frame plus one period) of a recording.
fn data_time(path: &Path) -> anyhow::Result<(usize, f64)> {
    let r = Recording::open_without_images(path)?;
    let n = r.frames.len();
    let span = match (r.frames.first(), r.frames.last()) {
        (Some(a), Some(b)) if n > 1 => (b.t_ns - a.t_ns) as f64 / 1e9 * n as f64 / (n - 1) as f64,
        _ => 0.0,
    };
    Ok((n, span))
}

/// Wall time of one `adasd replay`, s.
fn time_replay(args: &Replay) -> anyhow::Result<f64> {
    let started = Instant::now();
    cli::replay(args)?;
    Ok(started.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `input`'s frames `repeats` times over, each pass shifted by the input's duration.
fn long_recording(input: &Path, repeats: u64, out: &Path) -> anyhow::Result<()> {
    let r = Recording::open(input)?;
    let (n, span_s) = data_time(input)?;
    let period_ns = (span_s * 1e9) as u64;
    let mut file = McapFile::create(out, &r.metadata, 0)?;
    for k in 0..repeats {
        for (i, f) in r.frames.iter().enumerate() {
            let t_ns = f.t_ns + k * period_ns;
            let mut outcome = f.outcome.clone();
            if let Some(o) = outcome.as_mut() {
                o.detections.seq = k * n as u64 + i as u64;
                o.decision.seq = o.detections.seq;
            }
            let m = encode_frame(&FrameRecord {
                seq: k * n as u64 + i as u64,
                t_ns,
                jpeg: f.jpeg.as_deref(),
                outcome: outcome.as_ref(),
                can_rx: &[],
                can_tx: &[],
            })?;
            file.write_frame(&m)?;
        }
    }
    file.finish()?;
    Ok(())
}

/// Encode and write µs per frame for `frames` (repeated to `OVERHEAD_FRAMES`) into a file that
/// fsyncs every `sync_every` frames.
fn recording_overhead(
    r: &Recording,
    images: bool,
    sync_every: u32,
    dir: &Path,
) -> anyhow::Result<(f64, f64)> {
    let path = dir.join(format!("overhead-{images}-{sync_every}.mcap"));
    let mut file = McapFile::create(&path, &r.metadata, sync_every)?;
    let (mut encode, mut write) = (0.0, 0.0);
    for (i, f) in r.frames.iter().cycle().take(OVERHEAD_FRAMES).enumerate() {
        let started = Instant::now();
        let m = encode_frame(&FrameRecord {
            seq: i as u64,
            t_ns: i as u64 * 100_000_000,
            jpeg: f.jpeg.as_deref().filter(|_| images),
            outcome: f.outcome.as_ref(),
            can_rx: &[],
            can_tx: &[],
        })?;
        let encoded = Instant::now();
        file.write_frame(&m)?;
        encode += (encoded - started).as_secs_f64();
        write += encoded.elapsed().as_secs_f64();
    }
    let started = Instant::now();
    file.finish()?;
    write += started.elapsed().as_secs_f64();
    let per = |s: f64| s * 1e6 / OVERHEAD_FRAMES as f64;
    Ok((per(encode), per(write)))
}

fn main() -> anyhow::Result<()> {
    let repo = PathBuf::from(env!("ADAS_REPO_ROOT"));
    let sample = repo.join("samples/vtest.mcap");
    let config = repo.join("samples/vtest.toml");
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut figures = Vec::new();

    // Detector on (CPU): one run (about 10 s on two cores).
    let detector_out = dir.join("detector");
    let wall = time_replay(&replay_args(&sample, &config, &detector_out, false))?;
    let replayed = detector_out.join(cli::REPLAY_FILE);
    let (frames, data_s) = data_time(&replayed)?;
    figures.push(Figure {
        what: "detector on (CPU), samples/vtest.mcap".into(),
        frames,
        data_s,
        wall_s: wall,
    });

    // The replay's output without images, like samples/vtest.reference.mcap.
    let mut no_images = replay_args(&replayed, &config, &dir.join("no-images"), true);
    no_images.no_images = true;
    time_replay(&no_images)?;
    let decisions_only = dir.join("no-images").join(cli::REPLAY_FILE);

    let long = dir.join("long.mcap");
    long_recording(&replayed, LONG_REPEATS, &long)?;

    for (what, input) in [
        ("object list, with JPEGs passed through", &replayed),
        (
            "object list, decisions only (like the reference)",
            &decisions_only,
        ),
        ("object list, long recording with JPEGs", &long),
    ] {
        let (frames, data_s) = data_time(input)?;
        let mut walls = Vec::new();
        for run in 0..RUNS {
            let out = dir.join(format!("objects-{run}"));
            walls.push(time_replay(&replay_args(input, &config, &out, true))?);
            std::fs::remove_dir_all(&out)?;
        }
        figures.push(Figure {
            what: what.into(),
            frames,
            data_s,
            wall_s: median(walls),
        });
    }

    let r = Recording::open(&replayed)?;
    let mut overhead = Vec::new();
    for (images, sync_every) in [(true, 0), (true, 10), (false, 0)] {
        let (encode, write) = recording_overhead(&r, images, sync_every, dir)?;
        overhead.push((images, sync_every, encode, write));
    }

    println!("\n--- replay speed (wall clock, start-up included; object list: median of {RUNS})");
    for f in &figures {
        f.print();
    }
    if let (Some(short), Some(long)) = (figures.get(1), figures.get(3)) {
        let per_frame = long.wall_s / long.frames as f64;
        println!(
            "object list per frame (long recording): {:.3} ms = {:.0}× real time at 10 fps; start-up ≈ {:.1} ms",
            per_frame * 1e3,
            0.1 / per_frame,
            (short.wall_s - per_frame * short.frames as f64) * 1e3
        );
    }
    println!("--- recording overhead per frame ({OVERHEAD_FRAMES} frames, µs)");
    for (images, sync_every, encode, write) in overhead {
        println!(
            "{:<28} fsync every {:>2} frames: encode {:>7.1}  write {:>7.1}  total {:>7.1}",
            if images {
                "JPEG + decisions"
            } else {
                "decisions only"
            },
            sync_every,
            encode,
            write,
            encode + write
        );
    }
    Ok(())
}
