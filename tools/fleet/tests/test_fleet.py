"""The driver's parts without a cluster: manifest, classifying a replay, merging the report.
The cluster itself is tested for real by tests/fleet/ci.sh."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adas_fleet import manifest, replay, report  # noqa: E402


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_manifest_drives_folders_defaults_and_relative_paths(tmp_path):
    for name in ("b.mcap", "a.mcap"):
        write(tmp_path / "rec" / name, "")
    m = write(tmp_path / "fleet.toml", """
[defaults]
recorded_detections = true
config = "sim.toml"

[[drive]]
name = "vtest"
recording = "/data/vtest.mcap"
reference = "refs/vtest.reference.mcap"
recorded_detections = false
args = ["--tol-time", "0.1"]

[[folder]]
recordings = "rec"
references = "refs"
""")
    drives = manifest.load(m)
    assert [d.name for d in drives] == ["vtest", "a", "b"]
    v, a = drives[0], drives[1]
    assert v.recording == "/data/vtest.mcap" and not v.recorded_detections
    assert v.reference == str(tmp_path / "refs/vtest.reference.mcap")
    assert v.args == ("--tol-time", "0.1") and v.config == str(tmp_path / "sim.toml")
    assert a.recorded_detections and a.reference == str(tmp_path / "refs/a.mcap")
    assert a.recording == str(tmp_path / "rec/a.mcap")


@pytest.mark.parametrize("text, message", [
    ("[[drive]]\nrecording = 'a.mcap'\n", "`reference` is missing"),
    ("[[drive]]\nrecording = 'a.mcap'\nreference = 'r.mcap'\nspeed = 2\n", "unknown key(s) ['speed']"),
    ("[[drive]]\nrecording = 'x/a.mcap'\nreference = 'r'\n[[drive]]\nrecording = 'y/a.mcap'\nreference = 'r'\n",
     "drive name `a` twice"),
    ("[[folder]]\nrecordings = 'nowhere'\nreferences = 'refs'\n", "does not exist"),
    ("", "no drives"),
    ("[drives]\n", "unknown table(s) ['drives']"),
])
def test_manifest_errors_name_the_entry_and_the_fix(tmp_path, text, message):
    with pytest.raises(manifest.ManifestError) as e:
        manifest.load(write(tmp_path / "m.toml", text))
    assert message in str(e.value) and "m.toml" in str(e.value)


def test_the_command_line_carries_every_drive_option():
    d = manifest.Drive("x", "/r/x.mcap", "/refs/x.mcap", config="/c.toml", recorded_detections=True,
                       args=("--force",))
    cmd = replay.command("/bin/adasd", d, Path("/out/x"), "cuda")
    assert cmd == ["/bin/adasd", "replay", "/r/x.mcap", "--out", "/out/x", "--compare", "/refs/x.mcap", "--json",
                   "--config", "/c.toml", "--recorded-detections", "--backend", "cuda", "--force"]


def document(outcome: str, code: int, **extra) -> str:
    return json.dumps({"format": "adasd-replay-compare", "version": 1, "outcome": outcome, "exit_code": code,
                       **extra}) + "\n"


@pytest.mark.parametrize("code, outcome", [(0, "SAME"), (1, "DIFFERENT"), (3, "DAMAGED")])
def test_each_exit_status_is_its_outcome(code, outcome):
    r = replay.classify(code, document(outcome, code), "")
    assert r["outcome"] == outcome and r["document"]["exit_code"] == code and r["error"] is None


def test_failures_are_results_with_what_was_seen():
    r = replay.classify(2, document("FAILED", 2, error="reference x.mcap: not an MCAP file"), "error: …")
    assert r["outcome"] == "FAILED" and "not an MCAP file" in r["error"]
    # A usage error prints no document; a crash or a signal is not one of adasd's statuses.
    assert "no result document" in replay.classify(2, "", "error: unexpected argument")["error"]
    assert "status 101" in replay.classify(101, "", "thread 'main' panicked")["error"]
    assert "SIGKILL" in replay.classify(-9, "", "")["error"]
    # A document that disagrees with the exit status is not trusted.
    assert "exited with 0" in replay.classify(0, document("DIFFERENT", 1), "")["error"]


def test_tries_are_counted_in_the_drive_folder_and_old_outputs_cleared(tmp_path):
    out = tmp_path / "drives" / "x"
    assert replay.count_attempt(out) == 1
    write(out / "replay" / "replay.mcap", "half written")
    assert replay.count_attempt(out) == 2
    assert not (out / "replay").exists()


def episode(lead, short=False, excused=False, censored=False, regression=None):
    e = {"onset_s": 3.0, "warning_lead_s": lead, "short": short, "excused": excused, "interrupted": False,
         "censored": censored}
    if regression is not None:
        e["regression"] = regression
    return e


def result(name, outcome, new_episodes=(), ref_episodes=(), attempt=1, first=None):
    activity = {"frames": 100, "warnings": len(new_episodes), "warning_frames": 10,
                "braking_episodes": len(new_episodes), "braking_frames": 5}
    doc = {
        "format": "adasd-replay-compare", "outcome": outcome, "damage": [],
        "run": {"frames": 100, "data_s": 5.0, "wall_s": 0.05},
        "comparison": {
            "first_difference": first, "failures": [] if outcome == "SAME" else ["x"],
            "activity": {"reference": {**activity, "warnings": len(ref_episodes)}, "new": activity},
            "warning_lead": {}, "episodes": {"reference": list(ref_episodes), "new": list(new_episodes)},
        },
    }
    return {"name": name, "outcome": outcome, "exit_code": 0, "document": doc, "attempt": attempt, "wall_s": 0.1,
            "node": "n1"}


def test_the_report_merges_outcomes_activity_leads_and_cost():
    first = {"t_s": 3.0, "frame": 60, "field": "warning_lead", "reference": "1.00 s", "new": "0.30 s"}
    results = [
        result("a", "SAME", [episode(1.0)], [episode(1.0)]),
        result("b", "DIFFERENT", [episode(0.3, short=True, regression=True)], [episode(1.0)], first=first),
        result("c", "SAME", [episode(0.1, censored=True)], [episode(0.1, censored=True)], attempt=2),
        {"name": "d", "outcome": "FAILED", "exit_code": None, "attempt": 4,
         "error": "the task's worker died on each of 4 tries"},
    ]
    r = report.merge(results, {"nodes": 2, "cpus": 2}, 10.0, "/bin/adasd", "m.toml")
    assert not r["passed"] and report.exit_code(r) == 1
    assert r["counts"] == {"drives": 4, "SAME": 2, "DIFFERENT": 1, "FAILED": 1, "DAMAGED": 0, "retried": 2}
    assert r["activity"]["new"]["braking_episodes"] == 3 and r["activity"]["reference"]["warnings"] == 3
    lead = r["warning_lead"]["new"]
    assert (lead["episodes"], lead["short"], lead["censored"]) == (3, 1, 1)
    assert lead["min_s"] == 0.1 and lead["min_judged_s"] == 0.3 and lead["median_s"] == 0.3
    assert r["cost"]["drives_replayed"] == 3 and r["cost"]["realtime_factor"] == pytest.approx(100.0)
    b = next(d for d in r["drives"] if d["name"] == "b")
    assert b["regressions"] == 1 and b["first_difference"]["field"] == "warning_lead"
    text = report.table(r)
    assert "result: REGRESSION" in text and "1 DIFFERENT" in text and "2 retried" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "drive" not in line]
    assert [row.split(" | ")[0][2:] for row in rows] == ["b", "d", "a", "c"]
    assert "t=3.000s frame 60 warning_lead: 1.00 s → 0.30 s" in rows[0]
    assert "worker died" in rows[1]


def test_a_fleet_of_same_drives_passes():
    r = report.merge([result("a", "SAME"), result("b", "SAME")], {"nodes": 1, "cpus": 1}, 1.0, "adasd", "m")
    assert r["passed"] and report.exit_code(r) == 0
    assert "result: PASSED" in report.table(r)
