#!/usr/bin/env python3
"""Soak: `adasd run` for a given wall time over a looping source, with CAN input and an event-mode
recording, sampling the daemon's memory and open files.

    python3 tests/soak/soak.py --adasd target/release/adasd --seconds 120 --out /tmp/soak

The source is the vtest street sequence repeated (a folder of symlinks, 10 frames/s of data
time), the CAN input a VehicleSpeed log (E2E protected, 20 ms cycle) covering every frame, the
recording in event mode (black box). After `--seconds` the daemon gets SIGTERM. Pass/fail:
exit status 0, resident memory after the warm-up grows by less than `--max-growth-kb`, the
open-file count stays flat. Prints the figures and writes them (soak.json) and a chart
(soak.png) into the output folder.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "can"))
from e2e import protect  # noqa: E402
FPS = 10
# CPU detectors run well below this; the folder only has to outlast the run.
MAX_FRAMES_PER_S = 40


def speed_payloads(kph):
    """The 15 E2E variants (alive counter 0..14) of a valid VehicleSpeed frame, as hex."""
    raw = round(kph / 0.01)
    out = []
    for counter in range(15):
        data = bytearray(8)
        data[0], data[1] = raw & 0xFF, raw >> 8
        data[2] = 1  # VS_SpeedValid
        out.append(protect(0xA0, data, counter).hex().upper())
    return out


def make_inputs(out, frames):
    src = os.path.join(ROOT, "samples", "vtest", "frames")
    names = sorted(n for n in os.listdir(src) if n.endswith(".jpg"))
    folder = os.path.join(out, "frames")
    # Links from an earlier run may point into another checkout: start from an empty folder.
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for i in range(frames):
        os.symlink(os.path.join(src, names[i % len(names)]), os.path.join(folder, f"f{i:07d}.jpg"))
    payloads = speed_payloads(36.0)
    can_log = os.path.join(out, "ego.can.log")
    with open(can_log, "w") as f:
        for i in range(frames * 50 // FPS + 50):  # 50 Hz over the frames' data time
            t = 1_700_000_000 + i * 0.02
            f.write(f"({t:.6f}) can0 0A0#{payloads[i % 15]}\n")
    config = open(os.path.join(ROOT, "samples", "vtest.toml")).read()
    config = config.replace('"dir://vtest/frames"', json.dumps("dir://" + folder))
    config = config.replace("../models/", os.path.join(ROOT, "models") + "/")
    config = config.replace('"vtest_calibration.toml"',
                            json.dumps(os.path.join(ROOT, "samples", "vtest_calibration.toml")))
    config = config.replace("annotated_frames = true", "annotated_frames = false")
    config = config.replace('interface = "can0"',
                            f'interface = "can0"\ninput_log = {json.dumps(can_log)}')
    config += f"""
[record]
mode = "event"
dir = {json.dumps(os.path.join(out, "recordings"))}
pre_event_s = 5.0
post_event_s = 2.0
max_file_s = 60
max_total_mb = 200
"""
    path = os.path.join(out, "soak.toml")
    open(path, "w").write(config)
    return path


def sample(pid):
    """(resident KiB, open files) of a live process."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def rss_growth_kb(after):
    """Growth of resident memory after the warm-up: the peak of the second half over the peak
    of the first, each over the samples with the fewest open files. An open event recording
    holds its writer's buffers (about 2 MiB) and gives them back when it closes: comparing like
    with like keeps that from reading as a leak, while a leak raises both peaks in turn."""
    if len(after) < 2:
        return None
    fewest = min(s["fds"] for s in after)
    halves = (after[: len(after) // 2], after[len(after) // 2:])
    peaks = []
    for half in halves:
        quiet = [s["rss_kb"] for s in half if s["fds"] == fewest] or [s["rss_kb"] for s in half]
        peaks.append(max(quiet))
    return peaks[1] - peaks[0]


def chart(path, samples, warmup_s, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    t = [s["t"] / 60 for s in samples]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(t, [s["rss_kb"] / 1024 for s in samples], label="resident memory (MiB)")
    ax.set_xlabel("minutes")
    ax.set_ylabel("MiB")
    ax.axvline(warmup_s / 60, color="grey", linestyle=":", label="end of warm-up")
    ax2 = ax.twinx()
    ax2.plot(t, [s["fds"] for s in samples], color="tab:orange", label="open files")
    ax2.set_ylabel("open files")
    ax2.set_ylim(0, max(s["fds"] for s in samples) * 2)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adasd", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--out", required=True)
    # Until the event ring is full, the first event recorded and the allocator settled.
    p.add_argument("--warmup", type=float, default=None, help="s (default: 25 %% of the run, at most 300)")
    p.add_argument("--every", type=float, default=2.0, help="sampling period, s")
    p.add_argument("--max-growth-kb", type=int, default=1024)
    a = p.parse_args()
    warmup = a.warmup if a.warmup is not None else min(300.0, a.seconds * 0.25)
    os.makedirs(a.out, exist_ok=True)
    config = make_inputs(a.out, int(a.seconds * MAX_FRAMES_PER_S))
    env = dict(os.environ, ADASD_LOG="warn")
    log = open(os.path.join(a.out, "adasd.log"), "w")
    proc = subprocess.Popen([a.adasd, "run", "--quiet", "--config", config, "--out",
                             os.path.join(a.out, "out")], stdout=log, stderr=subprocess.STDOUT, env=env)
    start = time.monotonic()
    samples = []
    while proc.poll() is None and time.monotonic() - start < a.seconds:
        try:
            rss, fds = sample(proc.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        samples.append({"t": round(time.monotonic() - start, 1), "rss_kb": rss, "fds": fds})
        time.sleep(a.every)
    ended_early = proc.poll() is not None
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    log.close()

    after = [s for s in samples if s["t"] >= warmup]
    frames = sum(1 for _ in open(os.path.join(a.out, "out", "frames.jsonl")))
    rec_dir = os.path.join(a.out, "recordings")
    recordings = sorted(os.listdir(rec_dir)) if os.path.isdir(rec_dir) else []
    result = {
        "seconds": round(time.monotonic() - start, 1),
        "warmup_s": warmup,
        "exit_status": rc,
        "ended_early": ended_early,
        "frames": frames,
        "recordings": len(recordings),
        "rss_kb_at_warmup": after[0]["rss_kb"] if after else None,
        "rss_kb_max_after_warmup": max(s["rss_kb"] for s in after) if after else None,
        "rss_kb_last": after[-1]["rss_kb"] if after else None,
        "fds_min": min(s["fds"] for s in after) if after else None,
        "fds_max": max(s["fds"] for s in after) if after else None,
        "samples": samples,
    }
    growth = rss_growth_kb(after)
    result["rss_growth_kb"] = growth
    json.dump(result, open(os.path.join(a.out, "soak.json"), "w"), indent=1)
    chart(os.path.join(a.out, "soak.png"), samples, warmup,
          f"adasd run, {result['seconds'] / 60:.0f} min: {frames} frames, event recording, CAN input")
    print(f"soak: {result['seconds']:.0f} s, {frames} frames, exit status {rc}, "
          f"{len(recordings)} recording file(s)")
    print(f"soak: resident memory {result['rss_kb_at_warmup']} KiB after {warmup:.0f} s warm-up, "
          f"max {result['rss_kb_max_after_warmup']} KiB after it, last {result['rss_kb_last']} KiB; "
          f"growth (second half's peak over the first's) {growth} KiB")
    print(f"soak: open files {result['fds_min']}..{result['fds_max']} after the warm-up")
    failures = []
    if rc != 0 or ended_early:
        failures.append(f"adasd ended with status {rc} (early: {ended_early}); see {log.name}")
    if growth is None or growth >= a.max_growth_kb:
        failures.append(f"resident memory grew by {growth} KiB after the warm-up (limit {a.max_growth_kb})")
    # One more while an event's recording file is open.
    if not after or result["fds_max"] - result["fds_min"] > 1:
        failures.append(f"open files varied {result['fds_min']}..{result['fds_max']}")
    if frames < 10:
        failures.append(f"only {frames} frames processed")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
