//! `adasd bench --batch …`: latency and throughput per batch size, with the device stages
//! (upload, preprocess, inference, decode + NMS, download) for backends that run the whole frame
//! path on their device. Figures are printed, never asserted: they depend on the machine.

use crate::outln;
use adas_detect::{BackendKind, BackendOptions, Detector, GpuStageTimes};
use std::path::Path;
use std::time::Instant;

/// One batch size's measurements.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub batch: usize,
    /// Median wall time of one batch, frame bytes in → detections out, ms.
    pub latency_ms: f64,
    pub p99_ms: f64,
    pub images_per_s: f64,
    /// Median wall time of the network alone on one batch, ms: its steps replayed as one CUDA
    /// graph on the input the last frame left on the GPU, outputs left there, host clock around
    /// the launch and a stream synchronize. That is what the PyTorch peer
    /// (tests/bench/pytorch_peer.py) times; `latency_ms` is the whole frame (host copy into the
    /// pinned buffer → upload → preprocess → network → decode → NMS → download). Graph-mode
    /// backends only; None where the network could not be captured on its own.
    pub network_ms: Option<f64>,
    /// Device stages of one batch (GPU backends), median over the profiled runs.
    pub stages: Option<GpuStageTimes>,
    /// How the batch ran: `graph` (one CUDA graph launch), or `sequential` (backends with a
    /// batch-1 model run the images one after another).
    pub mode: &'static str,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub model: String,
    pub backend: String,
    pub precision: String,
    pub device: String,
    pub image: String,
    pub iterations: usize,
    /// Convolution FLOPs and memory traffic of one image (GPU engine), for the roofline.
    pub flops_per_image: Option<f64>,
    pub bytes_per_image: Option<f64>,
    pub rows: Vec<Row>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Runs the sweep. `options` carries the precision (cuda) and threads (ort).
pub fn sweep(
    model: &Path,
    kind: BackendKind,
    options: &BackendOptions,
    batches: &[usize],
    iterations: usize,
    image: &Path,
) -> anyhow::Result<Report> {
    let img = adas_io::decode::open(image)
        .map_err(anyhow::Error::msg)?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut rows = Vec::new();
    let mut report = Report {
        model: String::new(),
        backend: String::new(),
        precision: String::new(),
        device: String::new(),
        image: format!("{} ({w}×{h})", image.display()),
        iterations,
        flops_per_image: None,
        bytes_per_image: None,
        rows: Vec::new(),
    };
    for &batch in batches {
        let mut detector = load(model, kind, options, batch)?;
        report.model = detector.manifest().name.clone();
        report.backend = detector.backend_name().to_string();
        report.precision = precision_name(kind, options);
        report.device = detector.device();
        if let Some((flops, bytes)) = detector.cost_per_image() {
            report.flops_per_image = Some(flops);
            report.bytes_per_image = Some(bytes);
        }
        let frames: Vec<&[u8]> = vec![img.as_raw().as_slice(); batch];
        let mut samples = Vec::with_capacity(iterations);
        let mut stage_samples = Vec::new();
        let mut network_samples = Vec::new();
        let mode;
        if let Some(fd) = detector.frame_detector() {
            mode = "graph";
            for _ in 0..5 {
                fd.detect_frames(&frames, w, h)?;
            }
            for _ in 0..iterations {
                let t = Instant::now();
                fd.detect_frames(&frames, w, h)?;
                samples.push(t.elapsed().as_secs_f64() * 1e3);
            }
            // The frame figure stands without it: a missing network-only figure is reported,
            // not fatal.
            match fd.network_latency_ms(iterations) {
                Ok(s) => network_samples = s,
                Err(e) => tracing::warn!(batch, "bench: no network-only figure: {e}"),
            }
            for _ in 0..iterations.clamp(3, 20) {
                stage_samples.push(fd.profile_stages(&frames, w, h)?);
            }
        } else {
            mode = "sequential";
            for _ in 0..2 {
                detector.detect(img.as_raw(), w, h)?;
            }
            for _ in 0..iterations {
                let t = Instant::now();
                for _ in 0..batch {
                    detector.detect(img.as_raw(), w, h)?;
                }
                samples.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        samples.sort_by(f64::total_cmp);
        let latency_ms = percentile(&samples, 0.5);
        let stages = (!stage_samples.is_empty()).then(|| median_stages(&stage_samples));
        network_samples.sort_by(f64::total_cmp);
        let network_ms = (!network_samples.is_empty()).then(|| percentile(&network_samples, 0.5));
        rows.push(Row {
            batch,
            latency_ms,
            p99_ms: percentile(&samples, 0.99),
            images_per_s: batch as f64 / (latency_ms / 1e3),
            network_ms,
            stages,
            mode,
        });
    }
    report.rows = rows;
    Ok(report)
}

fn load(
    model: &Path,
    kind: BackendKind,
    options: &BackendOptions,
    batch: usize,
) -> anyhow::Result<Detector> {
    #[cfg(feature = "cuda")]
    if kind == BackendKind::Cuda {
        let mut o = options.clone();
        o.cuda.batch = batch;
        return Ok(Detector::load_with(model, kind, None, &o)?);
    }
    let _ = batch;
    Ok(Detector::load_with(model, kind, None, options)?)
}

fn precision_name(kind: BackendKind, options: &BackendOptions) -> String {
    #[cfg(feature = "cuda")]
    if kind == BackendKind::Cuda {
        return options.cuda.precision.name().to_string();
    }
    let _ = (kind, options);
    "fp32".into()
}

fn median_stages(s: &[GpuStageTimes]) -> GpuStageTimes {
    let med = |f: &dyn Fn(&GpuStageTimes) -> f64| {
        let mut v: Vec<f64> = s.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.5)
    };
    GpuStageTimes {
        upload_ms: med(&|t| t.upload_ms),
        preprocess_ms: med(&|t| t.preprocess_ms),
        inference_ms: med(&|t| t.inference_ms),
        decode_nms_ms: med(&|t| t.decode_nms_ms),
        download_ms: med(&|t| t.download_ms),
        eager_wall_ms: med(&|t| t.eager_wall_ms),
    }
}

/// The report as tables: batch / latency / throughput / speed-up over batch 1 / network alone,
/// then the stages.
pub fn print(report: &Report) -> std::io::Result<()> {
    outln!(
        "model {} · backend {} · {} · {} · image {} · {} runs per batch",
        report.model,
        report.backend,
        report.precision,
        report.device,
        report.image,
        report.iterations
    )?;
    outln!(
        "{:>6} {:>12} {:>10} {:>12} {:>10} {:>11} {:>12}",
        "batch",
        "latency ms",
        "p99 ms",
        "images/s",
        "speed-up",
        "mode",
        "network ms"
    )?;
    let base = report.rows.first().map_or(1.0, |r| r.images_per_s);
    for r in &report.rows {
        let network = r.network_ms.map_or("–".into(), |ms| format!("{ms:.3}"));
        outln!(
            "{:>6} {:>12.3} {:>10.3} {:>12.1} {:>9.2}× {:>11} {:>12}",
            r.batch,
            r.latency_ms,
            r.p99_ms,
            r.images_per_s,
            r.images_per_s / base,
            r.mode,
            network
        )?;
    }
    if report.rows.iter().any(|r| r.network_ms.is_some()) {
        // Two figures that answer different questions; say which is which next to them.
        outln!("latency: the whole frame (host copy → upload → preprocess → network → decode → NMS → download); network: the network alone as one CUDA graph, input already on the GPU, outputs left there (what the PyTorch peer times); medians of host wall time")?;
    }
    if let (Some(f), Some(b)) = (report.flops_per_image, report.bytes_per_image) {
        outln!("per image: {:.3} GFLOP (convolutions), {:.1} MB moved (each buffer written and read once)", f / 1e9, b / 1e6)?;
    }
    if report.rows.iter().any(|r| r.stages.is_some()) {
        outln!("device stages per batch (ms, CUDA events, queued behind a spin kernel; eager wall: host included):")?;
        outln!(
            "{:>6} {:>9} {:>11} {:>10} {:>11} {:>9} {:>11}",
            "batch",
            "upload",
            "preprocess",
            "inference",
            "decode+nms",
            "download",
            "eager wall"
        )?;
        for r in &report.rows {
            if let Some(s) = &r.stages {
                outln!(
                    "{:>6} {:>9.3} {:>11.3} {:>10.3} {:>11.3} {:>9.3} {:>11.3}",
                    r.batch,
                    s.upload_ms,
                    s.preprocess_ms,
                    s.inference_ms,
                    s.decode_nms_ms,
                    s.download_ms,
                    s.eager_wall_ms
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(batch: usize, network_ms: Option<f64>) -> Row {
        Row {
            batch,
            latency_ms: 0.5,
            p99_ms: 0.6,
            images_per_s: batch as f64 / 0.5e-3,
            network_ms,
            stages: None,
            mode: "graph",
        }
    }

    #[test]
    fn network_ms_reaches_the_json_report_and_is_null_when_absent() {
        // tests/gpu/report.py reads `network_ms` from these rows and treats null as "no figure".
        let json = serde_json::to_value(vec![row(1, Some(0.25)), row(2, None)]).unwrap();
        assert_eq!(json[0]["network_ms"], serde_json::json!(0.25));
        assert!(json[1]["network_ms"].is_null());
    }

    #[test]
    fn median_is_the_middle_sample() {
        assert_eq!(percentile(&[1.0, 2.0, 9.0], 0.5), 2.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
