//! `adasd` command line: the daemon's main job and its tools.

use adas_detect::{BackendKind, Detector, ImageDetection};
use adas_render::Renderer;
use adasd::config::Config;
use adasd::outln;
use adasd::service::{self, box_json, round, RunOptions};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "adasd",
    version,
    about = "ADAS daemon: camera → detector → bird's-eye view → decision → CAN",
    after_help = "Exit status: 0 success, 1 failure (the message says what and where), 2 usage \
                  error, 3 a recording read was damaged (everything intact was used). \
                  Logs go to stderr; ADASD_LOG=info (tracing filter syntax) overrides -v/-q. \
                  docs/CLI.md has the details.",
    help_expected = true
)]
struct Cli {
    #[command(flatten)]
    verbosity: adas_cli::Verbosity,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect objects in images and print them (table, or JSON lines with --json).
    Detect {
        /// Model manifest, e.g. models/nanodet_m_coco_416.toml.
        #[arg(long)]
        model: PathBuf,
        /// Inference backend (ort and cuda need their build features).
        #[arg(long, value_enum, default_value_t = BackendKind::Tract)]
        backend: BackendKind,
        /// Minimum score (default: the manifest's).
        #[arg(long)]
        threshold: Option<f32>,
        /// One JSON object per image and line.
        #[arg(long)]
        json: bool,
        /// Write annotated PNGs into this folder.
        #[arg(long)]
        draw: Option<PathBuf>,
        /// Images (JPEG/PNG) to detect in.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Run the pipeline: source → detect → BEV → decision → CAN. Prints a line per frame on a
    /// terminal (or with -v); into a pipe or the journal a start-up line, a progress line every
    /// 10 s of data and the summary; with -q only the summary.
    Run {
        /// The configuration (TOML; `adasd config check` validates it).
        #[arg(long)]
        config: PathBuf,
        /// Output folder for the CAN log, per-frame events and annotated frames
        /// (default: the config's output.dir, else ./adasd-out).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Stop after this many frames.
        #[arg(long)]
        max_frames: Option<u64>,
    },
    /// Replay a recording through the pipeline (time from the recording), optionally compare
    /// against a reference recording.
    Replay(Box<ReplayArgs>),
    /// Recording tools.
    Record {
        #[command(subcommand)]
        command: RecordCommand,
    },
    /// Pictures of a recording: annotated frames (PNG folder, or MP4 with ffmpeg) and a PNG
    /// timeline of ego speed, nearest object, TTC and stage.
    Render {
        /// The recording (MCAP).
        recording: PathBuf,
        /// A folder (PNG frames + timeline.png) or a file ending in .mp4.
        #[arg(long)]
        out: PathBuf,
        /// Only the timeline.
        #[arg(long)]
        timeline_only: bool,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Detector accuracy: detect on every image of a COCO annotation file and write the
    /// detections in the COCO results format (for tests/eval/coco_map.py).
    Eval(EvalArgs),
    /// Time the detector stages on an image.
    Bench(BenchArgs),
    /// INT8 calibration for TensorRT: run the model (tract, CPU) over images, collect per-tensor
    /// activation ranges and write the table ONNX Runtime's TensorRT provider reads
    /// (`detector.ort.tensorrt.int8_calibration_table`), plus `.cache` and `.json` copies.
    #[command(name = "calibrate-int8")]
    CalibrateInt8(CalibrateArgs),
}

#[derive(clap::Args)]
struct CalibrateArgs {
    /// Model manifest.
    #[arg(long)]
    model: PathBuf,
    /// Folder of calibration images (JPEG/PNG, taken in file-name order).
    #[arg(long)]
    images: PathBuf,
    /// Images to use. With fewer in the folder all are used and a warning says so; fewer
    /// than 10 readable images is an error.
    #[arg(long, default_value_t = 200)]
    count: usize,
    /// The table to write (a `.cache` and a `.json` copy go next to it).
    #[arg(long, default_value = "calibration.flatbuffers")]
    out: PathBuf,
    /// How a tensor's range is taken from its activations.
    #[arg(long, value_enum, default_value_t = adas_detect::int8::Method::Max)]
    method: adas_detect::int8::Method,
    /// For --method percentile.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// GPU engine: keep this many convolutions in FP16, those whose quantization costs the
    /// outputs most (each quantized alone on the CPU, over --sensitivity-images of the images;
    /// minutes per image on large models).
    #[arg(long, default_value_t = 0)]
    float_layers: usize,
    /// Images, spread over the calibration set, that --float-layers measures on.
    #[arg(long, default_value_t = 8)]
    sensitivity_images: usize,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The recording (MCAP) to replay.
    recording: PathBuf,
    /// Config to replay with (default: the one named in the recording, relative to it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Start at this data time, s.
    #[arg(long)]
    from: Option<f64>,
    /// Stop after this data time, s.
    #[arg(long)]
    to: Option<f64>,
    /// Pace: N × recorded rate, or `max` (as fast as possible, the default).
    #[arg(long, default_value = "max")]
    speed: String,
    /// Output folder: replay.mcap, frames.jsonl (the decisions log), can.log.
    #[arg(long, default_value = "adasd-replay")]
    out: PathBuf,
    /// Take detections from the recording instead of running the detector (object-list replay).
    #[arg(long)]
    recorded_detections: bool,
    /// Run the detector on this backend instead of the config's `[detector] backend`.
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Compare the replay's decisions and detections against this reference recording. Exit
    /// status: 0 the same within the tolerances, 1 different, 2 failed (nothing compared),
    /// 3 a recording was damaged.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// With --compare: print the outcome as one JSON document on stdout instead of the report
    /// (docs/RECORDING.md, "Machine-readable comparison").
    #[arg(long, requires = "compare", conflicts_with = "update_reference")]
    json: bool,
    /// With --compare: write the replay as the new reference (after showing the differences).
    #[arg(long)]
    update_reference: bool,
    /// Compare even if the reference was made with another calibration or model.
    #[arg(long)]
    force: bool,
    /// Tolerance: a stage change may move by this much, s.
    #[arg(long, default_value_t = 0.0)]
    tol_time: f64,
    /// Tolerance: target distance, m.
    #[arg(long, default_value_t = 0.05)]
    tol_distance: f64,
    /// Tolerance: score change of a matched detection.
    #[arg(long, default_value_t = 0.02)]
    tol_score: f64,
    /// IoU for two detections to be the same object.
    #[arg(long, default_value_t = 0.5)]
    iou: f64,
    /// Lost/new/rescored detections allowed.
    #[arg(long, default_value_t = 0)]
    max_detection_changes: usize,
    /// Also write annotated JPEGs into OUT/frames (-v prints a line per frame).
    #[arg(long)]
    frames: bool,
    /// Leave camera images out of replay.mcap (decisions only: small reference files).
    #[arg(long)]
    no_images: bool,
}

#[derive(Subcommand)]
enum RecordCommand {
    /// Build a recording from an image sequence or a video file and a candump log.
    Import(ImportArgs),
    /// Print what a recording holds (channels, frames, metadata, damage).
    Info {
        /// The recording (MCAP).
        recording: PathBuf,
        /// One JSON object instead of text (fields in docs/CLI.md).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config and everything it refers to (model, calibration, source). Exit status
    /// 0: `adasd run` would start and accept frames (warnings allowed); 1: it would not.
    Check {
        /// The configuration (TOML).
        file: PathBuf,
        /// One JSON object on stdout instead of text, also when the config does not load
        /// (fields in docs/CLI.md).
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct EvalArgs {
    /// Model manifest.
    #[arg(long)]
    model: PathBuf,
    /// COCO instances JSON (its images and categories are used).
    #[arg(long)]
    annotations: PathBuf,
    /// Folder holding the annotation file's images.
    #[arg(long)]
    images: PathBuf,
    /// Inference backend (ort and cuda need their build features).
    #[arg(long, value_enum, default_value_t = BackendKind::Tract)]
    backend: BackendKind,
    /// Engine precision (cuda backend).
    #[arg(long, default_value_t = adas_detect::Precision::Fp16)]
    precision: adas_detect::Precision,
    /// Minimum score. Low, because mAP integrates over the whole precision/recall curve.
    #[arg(long, default_value_t = 0.001)]
    threshold: f32,
    /// Results file (JSON array of {image_id, category_id, bbox, score}).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Model manifest.
    #[arg(long)]
    model: PathBuf,
    /// Inference backend (ort and cuda need their build features).
    #[arg(long, value_enum, default_value_t = BackendKind::Tract)]
    backend: BackendKind,
    /// Timed runs after 3 warm-up runs.
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Inference threads for the ort backend (tract runs on one).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Sweep batch sizes, e.g. 1,2,4,8,16,32,64: latency, throughput and device stages per
    /// batch (GPU backends batch on the device; CPU backends run the images in sequence).
    #[arg(long, value_delimiter = ',')]
    batch: Vec<usize>,
    /// Engine precision (cuda backend).
    #[arg(long, default_value_t = adas_detect::Precision::Fp16)]
    precision: adas_detect::Precision,
    /// Plan/kernel cache directory (cuda backend; default as `detector.cuda.cache_dir`).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Streams for the network's independent branches (cuda backend; 1 = in order).
    #[arg(long, default_value_t = adas_detect::DEFAULT_CUDA_STREAMS)]
    streams: usize,
    /// Also write the sweep as JSON (for tests/gpu/plot.py).
    #[arg(long)]
    json: Option<PathBuf>,
    /// The image to time the detector on.
    image: PathBuf,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// Folder of JPEG/PNG frames, in file-name order.
    #[arg(long)]
    frames: Option<PathBuf>,
    /// A video file: MP4/MOV with H.264, or raw .h264 (decoded by adasd; resampled to
    /// --fps: each output frame is the latest video frame at or before its time).
    #[arg(long)]
    video: Option<PathBuf>,
    /// CAN input (candump -L log), times rebased to the first frame.
    #[arg(long)]
    can: Option<PathBuf>,
    /// Frame rate of the recording (image sequences; videos are resampled to it), Hz.
    #[arg(long, default_value_t = 10.0)]
    fps: f64,
    /// Config the recording is meant for (named in its metadata, with hashes).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Re-encode frames at this JPEG quality (1–100) for smaller files.
    #[arg(long)]
    jpeg_quality: Option<u8>,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<usize>,
    /// The recording to write (MCAP).
    #[arg(long)]
    out: PathBuf,
}

impl ImportArgs {
    fn options(&self) -> adasd::record::import::ImportOptions {
        adasd::record::import::ImportOptions {
            frames: self.frames.clone(),
            video: self.video.clone(),
            can: self.can.clone(),
            fps: self.fps,
            jpeg_quality: self.jpeg_quality,
            max_frames: self.max_frames,
            out: self.out.clone(),
            metadata: Default::default(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _logging = adas_cli::init(&cli.verbosity);
    let result = match cli.command {
        Command::Detect {
            model,
            backend,
            threshold,
            json,
            draw,
            images,
        } => detect(&model, backend, threshold, json, draw.as_deref(), &images),
        Command::Run {
            config,
            out,
            max_frames,
        } => {
            let lines = service::Lines::for_run(&cli.verbosity, adas_cli::stdout_is_terminal());
            run(&config, out, max_frames, lines)
        }
        Command::Config {
            command: ConfigCommand::Check { file, json },
        } => config_check(&file, json),
        Command::Replay(args) => {
            adasd::record::cli::replay(&replay_request(*args, cli.verbosity.is_verbose()))
        }
        Command::Record {
            command: RecordCommand::Import(a),
        } => adasd::record::cli::import(a.options(), a.config.as_deref()),
        Command::Record {
            command: RecordCommand::Info { recording, json },
        } => adasd::record::cli::info(&recording, json),
        Command::Render {
            recording,
            out,
            timeline_only,
        } => adasd::record::cli::render(&recording, &out, timeline_only),
        Command::Eval(a) => eval(&a),
        Command::Bench(a) if !a.batch.is_empty() => bench_sweep(&a),
        Command::Bench(a) => bench(&a.model, a.backend, a.iterations, a.threads, &a.image),
        Command::CalibrateInt8(a) => calibrate_int8(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) if adasd::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn detect(
    model: &Path,
    backend: BackendKind,
    threshold: Option<f32>,
    json: bool,
    draw: Option<&Path>,
    images: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let mut detector = Detector::load(model, backend, threshold)?;
    if let Some(dir) = draw {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    let renderer = Renderer::default();
    let mut failed = 0;
    for path in images {
        let img = match adas_io::decode::open(path) {
            Ok(img) => img.to_rgb8(),
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
                continue;
            }
        };
        let (w, h) = img.dimensions();
        let (detections, _) = detector
            .detect(img.as_raw(), w as usize, h as usize)
            .with_context(|| format!("detecting in {}", path.display()))?;
        if json {
            outln!("{}", detections_json(path, w, h, &detections))?;
        } else {
            print_table(path, w, h, &detections)?;
        }
        if let Some(dir) = draw {
            let mut canvas = img.clone();
            renderer.draw_detections(&mut canvas, &detections, &[]);
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let out = dir.join(format!("{name}.png"));
            canvas
                .save(&out)
                .with_context(|| format!("cannot write {}", out.display()))?;
        }
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn detections_json(
    path: &Path,
    w: u32,
    h: u32,
    detections: &[ImageDetection],
) -> serde_json::Value {
    let list: Vec<_> = detections
        .iter()
        .map(|d| {
            serde_json::json!({
                "label": d.label,
                "class": d.class.as_str(),
                "score": round(f64::from(d.score), 4),
                "box": box_json(&d.bbox),
            })
        })
        .collect();
    serde_json::json!({
        "image": path.display().to_string(),
        "width": w,
        "height": h,
        "detections": list,
    })
}

fn print_table(path: &Path, w: u32, h: u32, detections: &[ImageDetection]) -> std::io::Result<()> {
    outln!(
        "{} ({w}×{h}): {} detections",
        path.display(),
        detections.len()
    )?;
    if detections.is_empty() {
        return Ok(());
    }
    outln!(
        "  {:<14} {:<11} {:>6}  {:>28}",
        "label",
        "class",
        "score",
        "box x1,y1,x2,y2 (px)"
    )?;
    for d in detections {
        let b = d.bbox;
        outln!(
            "  {:<14} {:<11} {:>6.3}  {:>6.1},{:>6.1},{:>6.1},{:>6.1}",
            d.label,
            d.class.as_str(),
            d.score,
            b.x1,
            b.y1,
            b.x2,
            b.y2
        )?;
    }
    Ok(())
}

fn run(
    config_path: &Path,
    out: Option<PathBuf>,
    max_frames: Option<u64>,
    lines: service::Lines,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let out_dir = out
        .or_else(|| config.output.dir.clone())
        .unwrap_or_else(|| PathBuf::from("adasd-out"));
    let started = std::time::Instant::now();
    let source = config.source.uri.clone();
    let logs = config.output.logs;
    let summary = service::run(
        config,
        &RunOptions {
            max_frames,
            lines,
            config_path: Some(config_path.to_path_buf()),
            ..RunOptions::new(out_dir.clone())
        },
    )?;
    let classes: Vec<String> = summary
        .per_class
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    outln!("---")?;
    outln!(
        "frames: {} processed, {} skipped; {:.1} frames/s ({:.1} s wall)",
        summary.frames,
        summary.skipped,
        summary.fps(),
        started.elapsed().as_secs_f64()
    )?;
    outln!(
        "detections: {}",
        if classes.is_empty() {
            "none".into()
        } else {
            classes.join(", ")
        }
    )?;
    outln!(
        "warnings: {} (in {} frames); braking in {} frames; AEB inhibited in {} frames; {} detections above the horizon ignored",
        summary.warnings,
        summary.warning_frames,
        summary.braking_frames,
        summary.inhibited_frames,
        summary.above_horizon
    )?;
    if logs {
        outln!(
            "output: {} (annotated frames in frames/, CAN log can.log with {} frames, events frames.jsonl)",
            out_dir.display(),
            summary.can_frames
        )?;
    } else {
        outln!(
            "output: {} ({} CAN frames sent; [output] logs off: no can.log, no frames.jsonl)",
            out_dir.display(),
            summary.can_frames
        )?;
    }
    if let Some(r) = &summary.recording {
        adasd::record::cli::print_recording_stats(r)?;
    }
    for (output, frames) in &summary.output_failures {
        outln!(
            "output failed: {output} could not be written for {frames} frame(s); see the log above"
        )?;
    }
    // A recording as the source (`mcap://FILE`): what of it was damaged and skipped.
    let recording = source.strip_prefix("mcap://").unwrap_or(&source);
    let damaged = adasd::record::cli::report_damage(Path::new(recording), &summary.source_damage);
    Ok(adasd::record::cli::exit_status(damaged, summary.frames > 0))
}

fn config_check(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let report = match adasd::check::check_file(path) {
        Ok(report) => report,
        Err(e) if json => adasd::check::CheckReport::not_loaded(path, &e),
        Err(e) => return Err(e),
    };
    let status = if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if json {
        outln!("{}", serde_json::to_string(&report)?)?;
        return Ok(status);
    }
    for finding in &report.findings {
        eprintln!("{finding}");
    }
    if !report.ok {
        eprintln!(
            "{}: {} error(s); `adasd run` would reject frames",
            path.display(),
            report.errors
        );
        return Ok(status);
    }
    outln!(
        "{}: ok (model {}, source {}; AEB acts on: {}; {} warning(s))",
        path.display(),
        report.model.as_deref().unwrap_or("-"),
        report.source.as_deref().unwrap_or("-"),
        if report.aeb_acts_on.is_empty() {
            "nothing".into()
        } else {
            report.aeb_acts_on.join(", ")
        },
        report.warnings
    )?;
    Ok(status)
}

fn eval(a: &EvalArgs) -> anyhow::Result<ExitCode> {
    let (model, annotations, images, out) = (&a.model, &a.annotations, &a.images, &a.out);
    let options = adasd::config::backend_options(
        None,
        adas_detect::OrtConfig::default(),
        &adasd::config::CudaConfig {
            precision: a.precision,
            ..Default::default()
        },
    );
    let mut detector = Detector::load_with(model, a.backend, Some(a.threshold), &options)?;
    let s = adasd::eval::run(&mut detector, annotations, images, out)?;
    let dropped: Vec<String> = s.dropped.iter().map(|(l, n)| format!("{l} {n}")).collect();
    outln!(
        "eval {} ({}): {} images, {} detections written to {}, {} dropped (labels not in the annotations{}), {:.1} s",
        detector.manifest().name,
        detector.backend_name(),
        s.images,
        s.written,
        out.display(),
        s.dropped_total(),
        if dropped.is_empty() {
            String::new()
        } else {
            format!(": {}", dropped.join(", "))
        },
        s.seconds
    )?;
    Ok(ExitCode::SUCCESS)
}

fn bench(
    model: &Path,
    backend: BackendKind,
    iterations: usize,
    threads: usize,
    image: &Path,
) -> anyhow::Result<ExitCode> {
    let options = adas_detect::BackendOptions {
        ort: adas_detect::OrtConfig {
            threads,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut detector = Detector::load_with(model, backend, None, &options)?;
    let img = adas_io::decode::open(image)
        .map_err(anyhow::Error::msg)?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations + 3 {
        let (_, times) = detector.detect(img.as_raw(), w as usize, h as usize)?;
        if i >= 3 {
            samples.push(times);
        }
    }
    let stat = |f: &dyn Fn(&adas_detect::StageTimes) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let pct = |p: f64| {
            v.get(((v.len() as f64 - 1.0) * p).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        (mean, pct(0.5), pct(0.99))
    };
    outln!(
        "model {} backend {} image {} ({w}×{h}), {iterations} runs, inference threads: {}, cores: {}",
        detector.manifest().name,
        detector.backend_name(),
        image.display(),
        if backend == BackendKind::Tract {
            1
        } else {
            threads
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    )?;
    outln!(
        "{:<12} {:>10} {:>10} {:>10}",
        "stage",
        "mean ms",
        "p50 ms",
        "p99 ms"
    )?;
    type Stage<'a> = (&'a str, &'a dyn Fn(&adas_detect::StageTimes) -> f64);
    let rows: [Stage; 4] = [
        ("preprocess", &|t| t.preprocess.as_secs_f64() * 1e3),
        ("inference", &|t| t.inference.as_secs_f64() * 1e3),
        ("decode+nms", &|t| t.decode_nms.as_secs_f64() * 1e3),
        ("total", &|t| t.total().as_secs_f64() * 1e3),
    ];
    for (name, f) in rows {
        let (mean, p50, p99) = stat(f);
        outln!("{name:<12} {mean:>10.2} {p50:>10.2} {p99:>10.2}")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_sweep(a: &BenchArgs) -> anyhow::Result<ExitCode> {
    let options = adasd::config::backend_options(
        None,
        adas_detect::OrtConfig {
            threads: a.threads,
            ..Default::default()
        },
        &adasd::config::CudaConfig {
            precision: a.precision,
            device: 0,
            cache_dir: a.cache_dir.clone(),
            streams: a.streams,
            ..Default::default()
        },
    );
    let report = adasd::benchmark::sweep(
        &a.model,
        a.backend,
        &options,
        &a.batch,
        a.iterations,
        &a.image,
    )?;
    adasd::benchmark::print(&report)?;
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn calibrate_int8(a: &CalibrateArgs) -> anyhow::Result<ExitCode> {
    use adas_detect::int8;
    let manifest = adas_plugins::manifest::Manifest::load(&a.model)?;
    let mut files = adas_io::source::image_files(&a.images)?;
    if files.len() < a.count {
        eprintln!(
            "warning: {} has {} images, fewer than --count {}; calibrating with all {}",
            a.images.display(),
            files.len(),
            a.count,
            files.len()
        );
    }
    files.truncate(a.count);
    let samples = if a.float_layers > 0 {
        a.sensitivity_images.max(1)
    } else {
        0
    };
    let calibration = int8::calibrate(
        &manifest,
        &int8::CalibrationRequest {
            images: files,
            method: a.method,
            percentile: a.percentile,
            samples,
        },
    )?;
    for (path, e) in &calibration.skipped {
        eprintln!("warning: skipped unreadable image {}: {e}", path.display());
    }
    let model_sha256 = match &manifest.sha256 {
        Some(sha) => sha.clone(),
        None => adas_plugins::sha256_hex(
            &std::fs::read(&manifest.onnx)
                .with_context(|| format!("cannot read {}", manifest.onnx.display()))?,
        ),
    };
    let how = match a.method {
        int8::Method::Percentile => format!("percentile {}", a.percentile),
        int8::Method::Max => "max".into(),
        int8::Method::Entropy => "entropy".into(),
    };
    let mut engine = calibration.engine_table(&manifest.name, &model_sha256, &how);
    if a.float_layers > 0 {
        keep_float_layers(&manifest, &mut engine, &calibration.samples, a.float_layers)?;
    }
    let written = int8::write_table(&calibration.ranges, &engine, &a.out)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    outln!(
        "calibrated {} on {} images ({:?}): {} tensors{} → {}",
        manifest.name,
        calibration.images_used,
        a.method,
        calibration.ranges.len(),
        match engine.float_convolutions.len() {
            0 => String::new(),
            n => format!(", {n} convolutions kept in FP16"),
        },
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `calibrate-int8 --float-layers n`: measures every convolution's quantization cost on the
/// samples (with a progress bar), keeps the `n` costliest float in `engine` and prints the
/// ranking.
fn keep_float_layers(
    manifest: &adas_plugins::manifest::Manifest,
    engine: &mut adas_detect::int8::EngineTable,
    samples: &[adas_plugins::Tensor],
    n: usize,
) -> anyhow::Result<()> {
    eprintln!(
        "INT8 sensitivity: every convolution quantized alone, on the CPU over {} images \
         (minutes on large models)",
        samples.len()
    );
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "INT8 sensitivity {bar:30} {pos}/{len} convolutions, {elapsed} (ETA {eta})",
    ) {
        bar.set_style(style);
    }
    let costs = adas_detect::int8::float_layers(manifest, engine, samples, n, &|done, of| {
        bar.set_length(of as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let costs = costs?;
    outln!(
        "INT8 sensitivity over {} images: each convolution quantized alone, its outputs' \
         noise-to-signal ratio against the float network's (costliest first; * kept in FP16):",
        samples.len()
    )?;
    for (i, c) in costs.iter().enumerate() {
        let kept = if i < n { "*" } else { " " };
        outln!("  {kept} {:<32} {:.3e}", c.conv, c.cost)?;
    }
    Ok(())
}

/// The replay the command line asks for; `verbose`: a line per frame.
fn replay_request(a: ReplayArgs, verbose: bool) -> adasd::record::cli::Replay {
    adasd::record::cli::Replay {
        recording: a.recording,
        config: a.config,
        from_s: a.from,
        to_s: a.to,
        speed: a.speed,
        out: a.out,
        recorded_detections: a.recorded_detections,
        backend: a.backend,
        compare: a.compare,
        update_reference: a.update_reference,
        force: a.force,
        tolerances: adas_record::compare::Tolerances {
            time_s: a.tol_time,
            distance_m: a.tol_distance,
            iou: a.iou,
            score: a.tol_score,
            max_detection_changes: a.max_detection_changes,
        },
        frames: a.frames,
        verbose,
        no_images: a.no_images,
        json: a.json,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_argument_has_help_and_the_parser_is_consistent() {
        // `help_expected`: clap's debug assertions refuse an argument without help text.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
