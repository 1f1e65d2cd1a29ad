//! The command-line shell of recording: `replay` (with `--compare`), `record import`,
//! `record info` and `render`. Everything decided lives in the modules next to this one.

use super::outcome::{ComparisonJson, DamageJson, Document, Outcome, RunJson};
use crate::config::Config;
use crate::outln;
use crate::service::{self, Inputs, RunOptions};
use adas_calibration::Homography;
use adas_io::source::recording::Window;
use adas_record::compare::{self, Tolerances};
use adas_record::reader::{FrameReader, Images, Recording};
use adas_render::{timeline, FrameView, Renderer};
use anyhow::Context;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

pub struct Replay {
    pub recording: PathBuf,
    pub config: Option<PathBuf>,
    pub from_s: Option<f64>,
    pub to_s: Option<f64>,
    pub speed: String,
    pub out: PathBuf,
    pub recorded_detections: bool,
    /// Replaces the config's `[detector] backend`.
    pub backend: Option<adas_detect::BackendKind>,
    pub compare: Option<PathBuf>,
    pub update_reference: bool,
    pub force: bool,
    pub tolerances: Tolerances,
    pub frames: bool,
    /// A line per frame on stdout (`-v`).
    pub verbose: bool,
    pub no_images: bool,
    /// Print the outcome as one JSON document on stdout (`super::outcome`) instead of the
    /// report for people.
    pub json: bool,
}

/// Name of the replay's recording in its output folder.
pub const REPLAY_FILE: &str = "replay.mcap";

/// Exit status of `replay`, `record info`, `render` and `run` when a recording they read was
/// damaged: everything intact was read and every output is complete, but parts were skipped.
pub const EXIT_DAMAGED: u8 = 3;

/// Reports on stderr what of the recording `path` was skipped: one line per damaged part, then
/// how many. Returns whether there was any.
pub fn report_damage(path: &Path, damage: &[impl std::fmt::Display]) -> bool {
    for d in damage {
        eprintln!("damaged: {}: {d}", path.display());
    }
    if !damage.is_empty() {
        eprintln!(
            "damaged: {}: {} damaged part(s) skipped, everything else read (exit status {EXIT_DAMAGED}); use an intact copy if there is one",
            path.display(),
            damage.len(),
        );
    }
    !damage.is_empty()
}

/// The exit status: [`EXIT_DAMAGED`] when a recording read was damaged (first: whatever else
/// was found, it was found in what was intact), else success or failure as the command `passed`.
pub fn exit_status(damaged: bool, passed: bool) -> ExitCode {
    match (damaged, passed) {
        (true, _) => ExitCode::from(EXIT_DAMAGED),
        (false, true) => ExitCode::SUCCESS,
        (false, false) => ExitCode::FAILURE,
    }
}

/// Decisions and detections only (compare, render), with its damage reported.
fn open_without_images(path: &Path) -> anyhow::Result<Recording> {
    let r = Recording::open_without_images(path)?;
    report_damage(path, &r.damage);
    Ok(r)
}

/// `target` relative to the folder `base` (both made absolute), for paths stored in metadata.
fn relative_to(target: &Path, base: &Path) -> PathBuf {
    let (Ok(t), Ok(b)) = (std::fs::canonicalize(target), std::fs::canonicalize(base)) else {
        return target.to_path_buf();
    };
    let (tc, bc): (Vec<Component>, Vec<Component>) =
        (t.components().collect(), b.components().collect());
    let common = tc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..bc.len() {
        out.push("..");
    }
    for c in &tc[common..] {
        out.push(c);
    }
    out
}

/// The config to replay `recording` with: `--config`, else the one its metadata names
/// (`config_relative`: relative to the recording's folder; `config_path`: absolute, written by
/// older versions and where the relative one does not resolve).
fn replay_config(
    recording: &Path,
    metadata: &BTreeMap<String, String>,
    given: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let dir = recording.parent().unwrap_or(Path::new("."));
    for key in ["config_relative", "config_path"] {
        if let Some(p) = metadata.get(key) {
            let p = dir.join(p);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    anyhow::bail!(
        "recording {} names no config that exists here (relative: {}, absolute: {}); pass --config FILE",
        recording.display(),
        metadata.get("config_relative").map_or("-", |s| s.as_str()),
        metadata.get("config_path").map_or("-", |s| s.as_str()),
    )
}

fn print_identity_warnings(what: &Path, diffs: &[String]) {
    if !diffs.is_empty() {
        eprintln!(
            "warning: {} was made with another calibration/model than this replay:",
            what.display()
        );
        for d in diffs {
            eprintln!("  {d}");
        }
    }
}

pub fn print_recording_stats(r: &adas_record::RecorderStats) -> std::io::Result<()> {
    outln!(
        "recording: {} frames into {} file(s) ({}), {:.0} µs/frame encode+write{}{}",
        r.frames,
        r.files.len(),
        r.files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        r.per_frame_us(),
        if r.deleted.is_empty() {
            String::new()
        } else {
            format!(", {} old file(s) deleted (disk budget)", r.deleted.len())
        },
        r.error
            .as_ref()
            .map(|e| format!(
                "; {} write failure(s), {} frame(s) not recorded, the last: {e}",
                r.errors, r.lost_frames
            ))
            .unwrap_or_default()
    )?;
    Ok(())
}

/// `replay`: exit status 0 done (with `--compare`: the same within the tolerances), 1
/// different, 2 failed (nothing compared: the error is on stderr, and in the document with
/// `--json`), 3 a recording was damaged ([`Outcome`]).
pub fn replay(a: &Replay) -> anyhow::Result<ExitCode> {
    match replay_and_compare(a) {
        Ok(outcome) => Ok(outcome.exit_status()),
        Err(e) if crate::is_broken_pipe(&e) => Err(e),
        Err(e) => {
            eprintln!("error: {e:#}");
            if a.json {
                Document::failed(&a.recording, a.compare.as_deref(), &e).print()?;
            }
            Ok(Outcome::Failed.exit_status())
        }
    }
}

fn replay_and_compare(a: &Replay) -> anyhow::Result<Outcome> {
    // The whole command on the wall clock: opening, config, pipeline, frames, writing.
    let started = std::time::Instant::now();
    // Streamed: only the frame being replayed is in memory, however long the drive.
    let images = if a.recorded_detections && a.no_images {
        Images::Skip
    } else {
        Images::Keep
    };
    let recording = FrameReader::open(&a.recording, images)?;
    let recorded = recording.metadata().clone();
    let config_path = replay_config(&a.recording, &recorded, a.config.as_deref())?;
    let mut config = Config::load(&config_path)?;
    if let Some(backend) = a.backend {
        config.detector.backend = backend;
    }
    let mine = if a.recorded_detections {
        super::identity::metadata_object_list(&config, Some(&config_path), &recorded)
    } else {
        super::identity::metadata(&config, Some(&config_path))
    };
    print_identity_warnings(
        &a.recording,
        &super::identity::identity_differences(&recorded, &mine),
    );
    let window = Window {
        from_s: a.from_s,
        to_s: a.to_s,
    };
    let reference = open_reference(a, &mine)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create output folder {}", a.out.display()))?;
    let out_file = a.out.join(REPLAY_FILE);
    let options = replay_options(a, &config_path, mine, reference.as_ref())?;
    let pipeline = if a.recorded_detections {
        service::Pipeline::object_list(config)?
    } else {
        service::Pipeline::new(config)?
    };
    let inputs =
        Inputs::from_recording(recording, window, a.recorded_detections, pipeline.config())?;
    let summary = service::run_with(pipeline, inputs, &options)?;
    let wall_s = started.elapsed().as_secs_f64();
    if !a.json {
        print_replay(a, &summary, wall_s)?;
    }
    // The reference's damage was reported when it was opened.
    let damaged = report_damage(&a.recording, &summary.source_damage)
        || reference.as_ref().is_some_and(|r| !r.damage.is_empty());
    let Some(reference) = reference else {
        // Read back from what was just written, decisions only: the pipeline keeps no history.
        match replay_episodes(&out_file) {
            Ok(e) => write!(std::io::stdout().lock(), "{}", compare::render_episodes(&e))?,
            Err(e) => eprintln!("warning: braking episodes not reported: {e:#}"),
        }
        anyhow::ensure!(
            summary.frames > 0,
            "no frame of {} was replayed (check --from/--to against its times: `adasd record info`)",
            a.recording.display()
        );
        return Ok(Outcome::of(damaged, true));
    };
    let (report, passed) = compare_with(a, &reference, &out_file, window, damaged)?;
    let outcome = Outcome::of(damaged, passed);
    if a.json {
        let mut doc = Document::new(outcome, &a.recording, Some(&reference.path));
        doc.replay = Some(out_file.display().to_string());
        doc.damage = DamageJson::list(&a.recording, &summary.source_damage);
        doc.damage
            .extend(DamageJson::list(&reference.path, &reference.damage));
        let data_s = data_seconds(&summary);
        doc.run = Some(RunJson {
            frames: summary.frames,
            skipped: summary.skipped,
            data_s,
            wall_s,
            realtime_factor: data_s / wall_s.max(1e-9),
            object_list: a.recorded_detections,
        });
        doc.comparison = Some(ComparisonJson::of(&report));
        doc.print()?;
    }
    Ok(outcome)
}

/// Data time a replay covered: first to last frame plus one frame period, s.
fn data_seconds(summary: &service::Summary) -> f64 {
    let n = summary.frames + summary.skipped;
    match (summary.first_t_ns, summary.last_t_ns) {
        (Some(a), Some(b)) if n > 1 => b.saturating_sub(a) as f64 / 1e9 * n as f64 / (n - 1) as f64,
        _ => 0.0,
    }
}

/// The reference to compare with (`--compare`), refused when it was made with another
/// calibration or model unless `--force` or `--update-reference`.
fn open_reference(
    a: &Replay,
    mine: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<Option<Recording>> {
    Ok(match &a.compare {
        Some(p) => {
            let r = open_without_images(p)?;
            r.require_outcomes()?;
            let diffs = super::identity::identity_differences(&r.metadata, mine);
            if !diffs.is_empty() && !a.force && !a.update_reference {
                print_identity_warnings(p, &diffs);
                anyhow::bail!(
                    "reference {} was made with another calibration or model; the comparison would mostly show that. Pass --force to compare anyway, or --update-reference to replace it",
                    p.display()
                );
            }
            print_identity_warnings(p, &diffs);
            Some(r)
        }
        None if a.update_reference => anyhow::bail!("--update-reference needs --compare REFERENCE"),
        None => None,
    })
}

/// What the replay run writes and how: one recording (`replay.mcap`), no wall clock in it, the
/// config named relative to where the file will live.
fn replay_options(
    a: &Replay,
    config_path: &Path,
    identity: std::collections::BTreeMap<String, String>,
    reference: Option<&Recording>,
) -> anyhow::Result<RunOptions> {
    let speed = match a.speed.as_str() {
        "max" => None,
        s => Some(
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .with_context(|| format!("--speed {s}: use a positive number or `max`"))?,
        ),
    };
    let mut options = RunOptions::new(a.out.clone());
    options.lines = if a.verbose {
        service::Lines::PerFrame
    } else {
        service::Lines::Nothing
    };
    options.config_path = Some(config_path.to_path_buf());
    options.identity = Some(identity);
    options.record_to = Some(a.out.join(REPLAY_FILE));
    options.speed = speed;
    options.wall_clock_telemetry = false;
    // A replay beside the running daemon must not take over its endpoint.
    options.serve_metrics = false;
    options.annotate = Some(a.frames);
    // A fleet runs thousands of replays with --json: no progress bars in their logs.
    options.progress = !a.json;
    options.record_images = !a.no_images;
    options.record_metadata.insert(
        "source".into(),
        if a.recorded_detections {
            "replay (recorded detections)".into()
        } else {
            "replay".into()
        },
    );
    // The config relative to where the file will live, so that a committed reference replays
    // from any checkout without --config (`config_path` stays: absolute, as before).
    let home = match (reference, a.update_reference) {
        (Some(r), true) => r
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf(),
        _ => a.out.clone(),
    };
    options.record_metadata.insert(
        "config_relative".into(),
        relative_to(config_path, &home).display().to_string(),
    );
    options
        .record_metadata
        .insert("replay_of".into(), a.recording.display().to_string());
    options.record_metadata.insert(
        "replay_of_sha256".into(),
        super::identity::sha256_file(&a.recording),
    );
    Ok(options)
}

/// How fast the replay ran, on the wall clock and for the pipeline alone, and what it decided.
fn print_replay(a: &Replay, summary: &service::Summary, wall: f64) -> std::io::Result<()> {
    let n = summary.frames + summary.skipped;
    let data_s = data_seconds(summary);
    outln!(
        "replayed {} frames ({} skipped) of {} in {:.2} s: {:.1} frames/s, {:.1}× real time{}",
        summary.frames,
        summary.skipped,
        a.recording.display(),
        wall,
        (summary.frames + summary.skipped) as f64 / wall.max(1e-9),
        data_s / wall.max(1e-9),
        if a.recorded_detections {
            " (object list: detections from the recording)"
        } else {
            " (detector on)"
        }
    )?;
    // The pipeline alone (detector or not, tracker, decider), without start-up, JPEG decoding
    // and recording: the figure for "how much faster than real time".
    let per_frame_s = summary.busy.as_secs_f64() / summary.frames.max(1) as f64;
    outln!(
        "pipeline alone: {:.2} ms/frame, {:.0} frames/s, {:.1}× real time",
        per_frame_s * 1e3,
        summary.fps(),
        if per_frame_s > 0.0 && n > 0 {
            data_s / n as f64 / per_frame_s
        } else {
            0.0
        }
    )?;
    outln!(
        "warnings: {} (in {} frames); braking in {} frames",
        summary.warnings,
        summary.warning_frames,
        summary.braking_frames
    )?;
    if let Some(r) = &summary.recording {
        print_recording_stats(r)?;
    }
    outln!(
        "output: {} (replay.mcap, decisions log frames.jsonl, can.log)",
        a.out.display()
    )?;
    Ok(())
}

/// `--compare`: the new replay against the reference, over the replayed window (the report
/// for people printed unless `--json`); with `--update-reference` the new file replaces the
/// reference, unless a recording was `damaged`. Returns the report and whether the
/// comparison passed (or the reference was updated).
fn compare_with(
    a: &Replay,
    reference: &Recording,
    out_file: &Path,
    window: Window,
    damaged: bool,
) -> anyhow::Result<(compare::Report, bool)> {
    let new = open_without_images(out_file)?;
    let ref_frames: Vec<_> = reference
        .frames
        .iter()
        .filter(|f| window.contains(f.t_ns))
        .cloned()
        .collect();
    let report = compare::compare(&ref_frames, &new.frames, &a.tolerances);
    if !a.json {
        outln!("--- compare with {}", reference.path.display())?;
        write!(
            std::io::stdout().lock(),
            "{}",
            compare::render_text(&report)
        )?;
    }
    if a.update_reference && damaged {
        // A reference made from what was left of a damaged recording would hide the loss.
        eprintln!(
            "reference not updated: {} (damaged parts listed above); replay an intact recording to update it",
            reference.path.display()
        );
        return Ok((report, false));
    }
    if a.update_reference {
        std::fs::copy(out_file, &reference.path)
            .with_context(|| format!("cannot update the reference {}", reference.path.display()))?;
        outln!("reference updated: {}", reference.path.display())?;
        return Ok((report, true));
    }
    let passed = report.passed();
    Ok((report, passed))
}

/// The braking episodes of a recording's decisions, streamed (one frame in memory at a time).
fn replay_episodes(path: &Path) -> anyhow::Result<Vec<adas_core::aeb::JudgedEpisode>> {
    let mut r = FrameReader::open(path, Images::Skip)?;
    let mut frames = Vec::new();
    while let Some(f) = r.next_frame() {
        let f = f?;
        // CAN is not needed: drop it as it is read.
        let _ = r.take_can_until(f.t_ns);
        if let Some(o) = &f.outcome {
            frames.push(adas_core::aeb::EpisodeFrame::from_decision(
                f.t_ns,
                &o.decision.decision,
            ));
        }
    }
    Ok(adas_core::aeb::judge_episodes(&frames))
}

/// `record import`: `options` as given; `config` (the config the recording is meant for) adds
/// its identity to the metadata, with the config's path relative to the recording.
pub fn import(
    mut options: super::import::ImportOptions,
    config: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let out = options.out.clone();
    if let Some(q) = options.jpeg_quality {
        if !(1..=100).contains(&q) {
            anyhow::bail!("--jpeg-quality {q}: use 1–100");
        }
    }
    if let Some(c) = config {
        let cfg = Config::load(c)?;
        options.metadata = super::identity::metadata(&cfg, Some(c));
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        options.metadata.insert(
            "config_relative".into(),
            relative_to(c, dir).display().to_string(),
        );
    }
    let imported = super::import::import(&options)?;
    outln!(
        "{}: {} frames, {} CAN frames, {:.2} MB",
        out.display(),
        imported.frames,
        imported.can_frames,
        imported.bytes as f64 / 1e6
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What `record info` reports; with `--json` this object, field for field (docs/CLI.md).
#[derive(Debug, serde::Serialize)]
pub struct RecordingInfo {
    pub file: String,
    /// Frames (processed or not), camera images, frames with a decision.
    pub frames: u64,
    pub camera_frames: u64,
    pub decision_frames: u64,
    /// Data times of the first and last frame, s (`null` without frames).
    pub t_first_s: Option<f64>,
    pub t_last_s: Option<f64>,
    /// CAN frames received and sent.
    pub can_rx: u64,
    pub can_tx: u64,
    /// Messages per topic.
    pub topics: BTreeMap<String, u64>,
    /// The recording's metadata, less the embedded files (`*_toml`).
    pub metadata: BTreeMap<String, String>,
    /// Parts that could not be read and were skipped (exit status 3 when any).
    pub damage: Vec<DamageInfo>,
}

/// A damaged part of a recording.
#[derive(Debug, serde::Serialize)]
pub struct DamageInfo {
    /// The bytes skipped, `start..end` (equal where the file ends early).
    pub start: u64,
    pub end: u64,
    pub reason: String,
    /// The whole report in words, as the text output gives it.
    pub description: String,
}

impl std::fmt::Display for DamageInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

/// Reads the whole recording (streamed: one frame in memory at a time).
pub fn recording_info(path: &Path) -> anyhow::Result<RecordingInfo> {
    let mut r = FrameReader::open(path, Images::Keep)?;
    let (mut frames, mut camera, mut decisions, mut can_rx, mut can_tx) = (0, 0, 0, 0, 0);
    let (mut first, mut last) = (None, None);
    while let Some(f) = r.next_frame() {
        let f = f?;
        frames += 1;
        camera += u64::from(f.jpeg.is_some());
        decisions += u64::from(f.outcome.is_some());
        first.get_or_insert(f.t_ns);
        last = Some(f.t_ns);
        let (rx, tx) = r.take_can_until(f.t_ns);
        can_rx += rx.len() as u64;
        can_tx += tx.len() as u64;
    }
    let (rx, tx) = r.take_can_until(u64::MAX);
    can_rx += rx.len() as u64;
    can_tx += tx.len() as u64;
    let seconds = |t: Option<u64>| t.map(|t| t as f64 / 1e9);
    Ok(RecordingInfo {
        file: path.display().to_string(),
        frames,
        camera_frames: camera,
        decision_frames: decisions,
        t_first_s: seconds(first),
        t_last_s: seconds(last),
        can_rx,
        can_tx,
        topics: r
            .topics()
            .iter()
            .map(|(t, n)| (t.clone(), *n as u64))
            .collect(),
        metadata: r
            .metadata()
            .iter()
            .filter(|(k, _)| !k.ends_with("_toml"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        damage: r
            .damage()
            .iter()
            .map(|d| DamageInfo {
                start: d.start,
                end: d.end,
                reason: d.reason.clone(),
                description: d.to_string(),
            })
            .collect(),
    })
}

/// `record info`: what a recording holds, as text or (`json`) one JSON object. Exit status 3
/// when parts of it were damaged (reported on stderr as well).
pub fn info(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let i = recording_info(path)?;
    if json {
        outln!("{}", serde_json::to_string(&i)?)?;
    } else {
        outln!(
            "{}: {} frames, t = {:.3} … {:.3} s; camera {}, decisions {}; CAN rx {}, tx {}",
            i.file,
            i.frames,
            i.t_first_s.unwrap_or(0.0),
            i.t_last_s.unwrap_or(0.0),
            i.camera_frames,
            i.decision_frames,
            i.can_rx,
            i.can_tx,
        )?;
        for (topic, n) in &i.topics {
            outln!("  {topic:<22} {n} messages")?;
        }
        for (k, v) in &i.metadata {
            outln!("  {k} = {v}")?;
        }
        for d in &i.damage {
            outln!("  damaged: {}", d.description)?;
        }
    }
    // The report on stderr is the same for both forms.
    let damaged = report_damage(path, &i.damage);
    Ok(exit_status(damaged, true))
}

/// The timeline's series, one point per frame with an outcome (seconds from the first frame).
#[derive(Default)]
struct TimelineSeries {
    speed: Vec<(f64, Option<f64>)>,
    nearest: Vec<(f64, Option<f64>)>,
    threat: Vec<(f64, Option<f64>)>,
    ttc: Vec<(f64, Option<f64>)>,
    stage: Vec<(f64, Option<f64>)>,
    t_end: f64,
}

impl TimelineSeries {
    fn of(r: &Recording) -> TimelineSeries {
        let mut s = TimelineSeries::default();
        let t0 = r.frames.first().map_or(0, |f| f.t_ns);
        for f in &r.frames {
            let Some(o) = &f.outcome else { continue };
            let t = (f.t_ns - t0) as f64 / 1e9;
            s.t_end = t;
            let d = &o.decision.decision;
            s.speed.push((t, o.decision.ego_speed_mps.map(|v| v * 3.6)));
            let ahead = o.tracks.iter().filter(|t| t.confirmed && t.x_m >= 0.0);
            s.nearest
                .push((t, ahead.map(|t| t.x_m).min_by(f64::total_cmp)));
            s.threat.push((t, d.threat.map(|t| t.distance_m)));
            let ttc = d.threat.map(|t| t.ttc_s).filter(|v| v.is_finite());
            s.ttc.push((t, ttc.map(|v| v.min(10.0))));
            s.stage.push((t, Some(f64::from(d.stage.code()))));
        }
        s
    }
}

/// The timeline PNG of a recording's decisions: ego speed, distances, TTC and the AEB stage.
pub fn timeline_image(r: &Recording) -> image::RgbImage {
    let TimelineSeries {
        speed,
        nearest,
        threat,
        ttc,
        stage,
        t_end,
    } = TimelineSeries::of(r);
    let max_speed = speed
        .iter()
        .filter_map(|p| p.1)
        .fold(10.0f64, f64::max)
        .ceil();
    let max_dist = nearest
        .iter()
        .chain(&threat)
        .filter_map(|p| p.1)
        .fold(10.0f64, f64::max)
        .min(100.0)
        .ceil();
    let series = |name: &str, colour, points, steps| timeline::Series {
        name: name.into(),
        colour,
        points,
        steps,
    };
    let panels = [
        timeline::Panel {
            title: "ego speed, km/h".into(),
            y_min: 0.0,
            y_max: max_speed,
            y_labels: vec![],
            series: vec![series("speed", timeline::BLUE, speed, false)],
        },
        timeline::Panel {
            title: "distance, m".into(),
            y_min: 0.0,
            y_max: max_dist,
            y_labels: vec![],
            series: vec![
                series("nearest track", timeline::GREEN, nearest, false),
                series("threat (in path)", timeline::ORANGE, threat, false),
            ],
        },
        timeline::Panel {
            title: "time to collision, s (clipped at 10)".into(),
            y_min: 0.0,
            y_max: 10.0,
            y_labels: vec![],
            series: vec![series("TTC", timeline::RED, ttc, false)],
        },
        timeline::Panel {
            title: "AEB stage".into(),
            y_min: 0.0,
            y_max: 3.0,
            y_labels: vec![
                (0.0, "none".into()),
                (1.0, "fcw".into()),
                (2.0, "partial".into()),
                (3.0, "full".into()),
            ],
            series: vec![series("stage", timeline::RED, stage, true)],
        },
    ];
    let name = r
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    timeline::draw(&format!("{name}: timeline"), 0.0, t_end, &panels)
}

pub fn render(path: &Path, out: &Path, timeline_only: bool) -> anyhow::Result<ExitCode> {
    // The decisions for the timeline; the pictures below stream (one image in memory).
    let r = open_without_images(path)?;
    r.require_outcomes()?;
    let mp4 = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"));
    let (frames_dir, timeline_path) = if mp4 {
        let tmp = std::env::temp_dir().join(format!("adasd-render-{}", std::process::id()));
        (tmp, out.with_extension("timeline.png"))
    } else {
        (out.to_path_buf(), out.join("timeline.png"))
    };
    std::fs::create_dir_all(&frames_dir)
        .with_context(|| format!("cannot create {}", frames_dir.display()))?;
    let tl = timeline_image(&r);
    tl.save(&timeline_path)
        .with_context(|| format!("cannot write {}", timeline_path.display()))?;
    outln!("timeline: {}", timeline_path.display())?;
    // Its damage was reported when it was opened; the pictures below skip the same parts.
    let damaged = !r.damage.is_empty();
    if timeline_only {
        return Ok(exit_status(damaged, true));
    }
    let calibration = r.metadata.get("calibration_toml").with_context(|| {
        format!(
            "recording {} has no calibration in its metadata (needed for the corridor); render --timeline-only works without",
            path.display()
        )
    })?;
    let homography =
        adas_calibration::CalibrationFile::from_toml_str(calibration, path)?.homography()?;
    let written = draw_frames(path, &homography, &frames_dir)?;
    if mp4 {
        let fps = r
            .frames
            .windows(2)
            .map(|w| (w[1].t_ns - w[0].t_ns) as f64)
            .next()
            .filter(|d| *d > 0.0)
            .map_or(10.0, |d| 1e9 / d);
        encode_video(&frames_dir, fps, out)?;
        outln!("video: {} ({written} frames)", out.display())?;
    } else {
        outln!("frames: {written} PNGs in {}", frames_dir.display())?;
    }
    Ok(exit_status(damaged, true))
}

/// Every recorded frame with its outcome drawn as the daemon draws it, as numbered PNGs in `dir`
/// (streamed: one image in memory). Returns how many were written.
fn draw_frames(path: &Path, homography: &Homography, dir: &Path) -> anyhow::Result<usize> {
    let renderer = Renderer::default();
    let mut written = 0usize;
    let mut frames = FrameReader::open(path, Images::Keep)?;
    while let Some(f) = frames.next_frame() {
        let f = f?;
        // CAN is not drawn: drop it as it is read.
        let _ = frames.take_can_until(f.t_ns);
        let (Some(jpeg), Some(o)) = (&f.jpeg, &f.outcome) else {
            continue;
        };
        let mut img = match adas_io::decode::rgb(jpeg, image::ImageFormat::Jpeg) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("warning: frame {} (t = {} ns): {e}", f.seq, f.t_ns);
                continue;
            }
        };
        renderer.draw_frame(
            &mut img,
            &FrameView {
                detections: &o.detections.detections,
                bev: &o.bev,
                decision: &o.decision.decision,
                homography,
                tracks: &o.tracks,
                caption: format!(
                    "frame {} t={:.2}s ego {}",
                    f.seq,
                    f.t_ns as f64 / 1e9,
                    o.decision
                        .ego_speed_mps
                        .map_or("?".into(), |v| format!("{:.0} km/h", v * 3.6))
                ),
            },
        );
        let p = dir.join(format!("frame_{written:05}.png"));
        img.save(&p)
            .with_context(|| format!("cannot write {}", p.display()))?;
        written += 1;
    }
    Ok(written)
}

/// `dir`'s numbered PNGs as an H.264 MP4 at `fps` (ffmpeg); the PNGs are removed either way.
fn encode_video(dir: &Path, fps: f64, out: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-y",
            "-framerate",
            &format!("{fps:.3}"),
            "-i",
        ])
        .arg(dir.join("frame_%05d.png"))
        .args([
            "-pix_fmt",
            "yuv420p",
            "-vf",
            "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        ])
        .arg(out)
        .status();
    let _ = std::fs::remove_dir_all(dir);
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => anyhow::bail!("ffmpeg failed ({s}) writing {}", out.display()),
        Err(e) => anyhow::bail!(
            "cannot run ffmpeg ({e}); render into a folder instead (--out DIR) for PNG frames"
        ),
    }
}
