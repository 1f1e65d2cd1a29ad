//! The metrics endpoint of a running `adasd run`: scraped twice over TCP while it decides, the
//! counters grow and agree with each other and with the run's summary; `/healthz` reflects the
//! AEB status; a port that is taken leaves the daemon running without the endpoint.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(180);

/// The vtest sequence (100 frames) with a VehicleSpeed log as CAN input, a continuous
/// recording and `[metrics] listen`.
fn config(dir: &Path, listen: &str) -> std::path::PathBuf {
    let frames = common::repo().join("samples/vtest/frames");
    let log = dir.join("ego.can.log");
    std::fs::write(&log, common::speed_log(600)).unwrap();
    let text = common::vtest_config(&format!("dir://{}", frames.display()))
        .replace("annotated_frames = true", "annotated_frames = false")
        .replace(
            "interface = \"can0\"",
            &format!(
                "interface = \"can0\"\ninput_log = {:?}",
                log.display().to_string()
            ),
        )
        + &format!(
            "\n[record]\nmode = \"continuous\"\ndir = {:?}\n\n[metrics]\nlisten = {listen:?}\n",
            dir.join("recordings").display().to_string()
        );
    let path = dir.join("adasd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `adasd run` with its stderr lines sent to the returned channel.
fn start(dir: &Path, config: &Path, extra: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args(["run", "--quiet", "--config"])
        .arg(config)
        .arg("--out")
        .arg(dir.join("out"))
        .args(extra)
        .env("ADASD_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for the stderr line that contains `needle`; returns it and what came before.
fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str) -> (String, Vec<String>) {
    let until = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return (line, seen),
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no log line with {needle:?}; stderr:\n{}", seen.join("\n"));
}

/// The address the daemon logged: `… on http://127.0.0.1:PORT/metrics …`.
fn metrics_address(rx: &mpsc::Receiver<String>) -> SocketAddr {
    let (line, _) = wait_for_line(rx, "/metrics");
    let start = line.find("http://").unwrap() + "http://".len();
    let end = start + line[start..].find("/metrics").unwrap();
    line[start..end].parse().unwrap()
}

fn decided_frames(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("out/frames.jsonl")).map_or(0, |t| t.lines().count())
}

fn wait_for_frames(dir: &Path, n: usize) {
    let until = Instant::now() + DEADLINE;
    while Instant::now() < until {
        if decided_frames(dir) >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("fewer than {n} frames decided in {DEADLINE:?}");
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// One request as written (`request` without the final blank line), over a new connection.
fn request(addr: SocketAddr, request: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("{request}\r\n\r\n").as_bytes())
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: adasd"))
}

/// The samples of a scrape: series (name and labels as written) → value.
fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(
        r.head
            .contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        r.head
    );
    r.body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn sum_of(samples: &BTreeMap<String, f64>, family: &str) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| series.starts_with(&format!("{family}{{")))
        .map(|(_, v)| v)
        .sum()
}

/// "frames: N processed, M skipped; …" from the summary.
fn summary_frames(stdout: &str) -> (f64, f64) {
    let line = stdout.lines().find(|l| l.starts_with("frames: ")).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    (
        words[1].parse().unwrap(),
        words[3].trim_end_matches(',').parse().unwrap(),
    )
}

#[test]
fn a_running_daemon_is_scraped_and_its_counters_agree_with_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "127.0.0.1:0");
    let (child, stderr) = start(dir.path(), &config, &[]);
    let addr = metrics_address(&stderr);

    wait_for_frames(dir.path(), 3);
    let first = scrape(addr);
    let health = get(addr, "/healthz");
    wait_for_frames(
        dir.path(),
        first["adas_frames_processed_total"] as usize + 3,
    );
    let second = scrape(addr);

    // Counters only grow, and the run went on between the scrapes.
    for (series, before) in &first {
        let counter = series.contains("_total") || series.contains("_bucket");
        let counter = counter || series.ends_with("_count") || series.ends_with("_sum");
        if counter {
            assert!(
                second[series] >= *before,
                "{series}: {before} → {}",
                second[series]
            );
        }
    }
    let processed = second["adas_frames_processed_total"];
    assert!(processed > first["adas_frames_processed_total"]);
    for growing in [
        "adas_can_rx_frames_total",
        "adas_can_tx_frames_total{link=\"log\"}",
        "adas_recording_bytes_total",
        "adas_recording_frames_total",
        "adas_pipeline_latency_seconds_sum",
    ] {
        assert!(second[growing] > first[growing], "{growing}");
    }

    // One scrape agrees with itself: every decided frame has a stage, a detector and a pipeline
    // time; every frame a capture-to-CAN time; the mode is one of the modes.
    let skipped = sum_of(&second, "adas_frames_skipped_total");
    assert_eq!(sum_of(&second, "adas_aeb_frames_total"), processed);
    assert_eq!(second["adas_detector_latency_seconds_count"], processed);
    assert_eq!(second["adas_pipeline_latency_seconds_count"], processed);
    assert_eq!(
        second["adas_capture_to_can_latency_seconds_bucket{le=\"+Inf\"}"],
        processed + skipped
    );
    assert_eq!(sum_of(&second, "adas_aeb_mode"), 1.0);
    assert_eq!(sum_of(&second, "adas_aeb_stage"), 1.0);
    // Every frame writes its warning into can.log, and the status every 100 ms of data.
    assert!(second["adas_can_tx_frames_total{link=\"log\"}"] >= processed);
    // A valid 50 Hz speed input: nothing rejected, nothing inhibited.
    assert_eq!(sum_of(&second, "adas_can_input_errors_total"), 0.0);
    assert_eq!(sum_of(&second, "adas_aeb_inhibited_frames_total"), 0.0);
    assert_eq!(second["adas_recording_dropped_frames_total"], 0.0);
    assert_eq!(sum_of(&second, "adas_output_failed_frames_total"), 0.0);
    assert_eq!(
        second[&format!(
            "adas_build_info{{version=\"{}\",detector=\"nanodet-m-coco-416 on tract\"}}",
            env!("CARGO_PKG_VERSION")
        )],
        1.0
    );

    // /healthz is what the status on CAN says: standby, nothing in the corridor.
    assert_eq!((health.status, health.body.as_str()), (200, "standby\n"));
    assert_eq!(second["adas_aeb_mode{mode=\"standby\"}"], 1.0);
    // The rest of HTTP: HEAD has no body, other paths 404, other methods 405, big heads 431.
    let head = request(addr, "HEAD /metrics HTTP/1.1");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(get(addr, "/").status, 404);
    let post = request(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0");
    assert_eq!(post.status, 405);
    assert!(post.head.contains("Allow: GET, HEAD"), "{}", post.head);
    let big = format!("GET /metrics HTTP/1.1\r\nX-Pad: {}", "a".repeat(10_000));
    assert_eq!(request(addr, &big).status, 431);

    // SIGTERM: the run ends in order; its summary counts at least what was scraped.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let (frames, summary_skipped) = summary_frames(&stdout);
    assert!(
        processed <= frames,
        "{processed} scraped, {frames} in the summary"
    );
    assert!(skipped <= summary_skipped);
    assert_eq!(frames as usize, decided_frames(dir.path()));
    // The endpoint went with the run.
    assert!(TcpStream::connect(addr).is_err(), "{addr} still open");
}

#[test]
fn a_taken_port_is_logged_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = config(dir.path(), &addr.to_string());
    let (child, stderr) = start(dir.path(), &config, &["--max-frames", "3"]);
    let (line, _) = wait_for_line(&stderr, "metrics endpoint");
    assert!(
        line.contains(&format!("cannot listen on {addr}"))
            && line.contains("another process has this port")
            && line.contains("the pipeline goes on"),
        "{line}"
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(decided_frames(dir.path()), 3);
    drop(taken);
}
