#!/usr/bin/env python3
"""tests/gpu/report.py on synthetic run folders shaped like tests/gpu/run.sh's (fixtures/report:
bench JSONs as `adasd bench --json` writes them, peer JSONs as tests/bench/pytorch_peer.py does,
nvidia-smi's gpu.txt, failures.txt). The fixture is a run with gaps on purpose: SSDLite has no FP32
bench and no peer, NanoDet's torch.compile default failed at batch 32 and its FP32 network was not
captured at batch 64, torch.compile ran at batch 1 and 32 only.

Fails when a table, a table row, the header line (GPU, driver, date), a goal line or a plot is
missing, or when a figure or verdict is not the one the fixture's numbers give.

usage: python3 tests/gpu/test_report.py   (needs matplotlib and pillow; CI runs it)
"""
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = pathlib.Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "report"
REPORT = HERE / "report.py"
HEADER = "_GPU: NVIDIA H100 80GB HBM3 · driver 580.159.04 · 2026/12/10 09:15:02.123 · engine:"
BATCHES = (1, 4, 8, 16, 32, 64)
COCO, NANODET, SSDLITE = ("COCO SSD-MobileNet-v2 300", "NanoDet-m 416", "SSDLite-MobileNet-v2 pedestrian 300")


def run_report(folder):
    return subprocess.run([sys.executable, str(REPORT), str(folder)], capture_output=True, text=True,
                          check=False)


def sections(markdown):
    """Heading → the lines under it, up to the next heading."""
    out, current = {}, None
    for line in markdown.splitlines():
        if line.startswith("#"):
            current = line.lstrip("#").strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


def table(lines):
    """The first Markdown table in `lines`: {first cell: [cells]}, and its column names."""
    rows = [ln for ln in lines if ln.startswith("|")]
    if len(rows) < 2:
        return {}, []
    split = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
    return {r[0]: r[1:] for r in split[2:]}, split[0][1:]


class Folder:
    """A temporary copy of the fixture, optionally edited."""

    def __enter__(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = pathlib.Path(self.tmp.name) / "gpu"
        shutil.copytree(FIXTURE, self.path)
        return self.path

    def __exit__(self, *exc):
        self.tmp.cleanup()


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


class ReportOnFixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = Folder()
        path = cls.folder.__enter__()
        result = run_report(path)
        if result.returncode != 0:
            raise AssertionError(f"report.py failed:\n{result.stderr}")
        cls.out, cls.path = result.stdout, path
        cls.sections = sections(result.stdout)

    @classmethod
    def tearDownClass(cls):
        cls.folder.__exit__(None, None, None)

    def test_every_heading_carries_the_gpu_driver_and_date(self):
        # The title, three tables per model, the roofline and the goals; the failed steps list is no table.
        measured = {h: ls for h, ls in self.sections.items() if not h.startswith("Failed steps")}
        self.assertEqual(len(measured), 1 + 3 * 3 + 2, list(measured))
        for heading, lines in measured.items():
            first = next((ln for ln in lines if ln.strip()), "")
            self.assertTrue(first.startswith(HEADER), f"{heading!r}: header line missing, got {first!r}")

    def test_main_tables_have_every_batch_and_column(self):
        for name in (COCO, NANODET, SSDLITE):
            stem = {COCO: "ssd_mobilenet_v2_coco_300", NANODET: "nanodet_m_coco_416",
                    SSDLITE: "ssdlite_mobilenet_v2_pedestrian_300"}[name]
            rows, columns = table(self.sections[f"{name} (`{stem}`)"])
            self.assertEqual(columns, [
                "ours INT8 frame", "ours FP16 frame", "ours FP32 frame", "ours INT8 network",
                "ours FP16 network", "ours FP32 network", "PyTorch eager FP16", "PyTorch eager FP32",
                "torch.compile default FP16", "torch.compile reduce-overhead FP16"])
            self.assertEqual(list(rows), [str(b) for b in BATCHES], name)
            for b, cells in rows.items():
                self.assertEqual(len(cells), 10, f"{name} batch {b}")

    def test_cells_are_time_per_sample_and_images_per_second_or_say_why_not(self):
        coco, _ = table(self.sections[f"{COCO} (`ssd_mobilenet_v2_coco_300`)"])
        nano, _ = table(self.sections[f"{NANODET} (`nanodet_m_coco_416`)"])
        lite, _ = table(self.sections[f"{SSDLITE} (`ssdlite_mobilenet_v2_pedestrian_300`)"])
        self.assertEqual(coco["32"][1], "0.156 ms · 6400/s")    # FP16 frame: 5.0 ms / 32
        self.assertEqual(coco["1"][0], "0.400 ms · 2500/s")     # INT8 frame
        self.assertEqual(coco["16"][3], "0.0875 ms · 11429/s")  # INT8 network: 1.4 ms / 16
        self.assertEqual(coco["1"][9], "0.600 ms · 1667/s")     # reduce-overhead
        self.assertEqual(coco["4"][8], "not run")               # torch.compile at 1 and 32 only
        self.assertEqual(nano["32"][8], "failed")
        self.assertEqual(nano["64"][5], "not captured")
        self.assertEqual(nano["1"][0], "not run")               # no INT8 bench
        self.assertEqual(lite["8"][2], "not run")               # no FP32 bench
        self.assertEqual(lite["8"][6], "not run")               # no peer

    def test_a_missing_bench_is_named(self):
        note = "INT8: no bench-nanodet_m_coco_416-int8.json"
        self.assertIn(note, "\n".join(self.sections[f"{NANODET} (`nanodet_m_coco_416`)"]))
        self.assertNotIn("INT8: no bench", "\n".join(self.sections[f"{COCO} (`ssd_mobilenet_v2_coco_300`)"]))

    def test_speed_up_tables_are_pytorch_time_over_ours(self):
        rows, columns = table(self.sections[f"{COCO}: speed-up ours ÷ PyTorch FP16 (eager)"])
        self.assertEqual(columns, ["ours INT8 frame", "ours FP16 frame", "ours FP32 frame",
                                       "ours INT8 network", "ours FP16 network", "ours FP32 network"])
        self.assertEqual(list(rows), [str(b) for b in BATCHES])
        self.assertEqual(rows["1"][1], "12.00×")   # 3.0 / 0.25
        self.assertEqual(rows["32"][1], "0.80×")   # 4.0 / 5.0: PyTorch faster
        rows, _ = table(self.sections[f"{COCO}: speed-up ours ÷ torch.compile reduce-overhead FP16"])
        self.assertEqual(list(rows), ["1", "32"])
        self.assertEqual(rows["1"][4], "3.00×")    # 0.6 / 0.2, network alone
        rows, _ = table(self.sections[f"{NANODET}: speed-up ours ÷ PyTorch FP16 (eager)"])
        self.assertEqual(rows["1"][0], "not run")
        self.assertIn("no figure at any batch", "\n".join(
            self.sections[f"{SSDLITE}: speed-up ours ÷ PyTorch FP16 (eager)"]))

    def test_every_goal_has_its_figures_and_verdict(self):
        goals = "\n".join(self.sections["Goals (issue #25)"])
        expected = [
            rf"\(a\) {COCO}: batch 1, ours FP16 whole frame 0.250 ms vs torch.compile reduce-overhead "
            r"network 0.600 ms: 2.40× .* → \*\*MET\*\*",
            rf"\(a\) {NANODET}: .* 1.44× faster .* → \*\*NOT MET\*\*",
            rf"\(a\) {SSDLITE}: .*\*\*NOT MEASURED\*\*",
            r"\(a\) every model: \*\*NOT MET\*\*",
            rf"\(b\) {COCO} batch 32: INT8 8000/s vs FP16 6400/s whole frame: 1.25× .* → \*\*NOT MET\*\*",
            rf"\(b\) {NANODET} batch 32, INT8 ≥ 1.5× FP16 throughput: \*\*NOT MEASURED\*\* \(INT8 missing",
            rf"\(c\) {COCO} FP16: batch 32 whole frame 6400/s vs roofline 51145/s: 8.0× below .* → \*\*NOT MET\*\*",
            rf"\(c\) {COCO} INT8: .* roofline 30099/s: 3.8× below",
            rf"\(c\) {NANODET} FP32: .* roofline 16029/s: 2.5× below .* → \*\*MET\*\*",
            rf"\(c\) {SSDLITE} FP32: \*\*NOT MEASURED\*\*",
            r"\(d\) COCO SSD batch 1 whole frame: FP16 0.250 ms \(< 0.3 ms needed\) → \*\*MET\*\*",
        ]
        for pattern in expected:
            self.assertRegex(goals, pattern)
        self.assertRegex(goals, rf"\(c\) {NANODET} INT8: \*\*NOT MEASURED\*\*")

    def test_roofline_states_flops_bytes_and_peaks(self):
        roof = "\n".join(self.sections["Roofline at batch 32"])
        self.assertIn(f"{COCO} FP16: 1.546 GFLOP, 65.5 MB per image; H100 SXM: 989.5 TFLOPS FP16 dense tensor, "
                      "3.35 TB/s", roof)
        self.assertIn(f"{COCO} INT8: 1.546 GFLOP, 111.3 MB per image; H100 SXM: 1979 TOPS INT8 dense tensor", roof)
        self.assertIn("roofline 16029 images/s (compute-bound)", roof)

    def test_plots_are_written(self):
        from PIL import Image

        for name in ("latency-ssd_mobilenet_v2_coco_300.png", "latency-nanodet_m_coco_416.png",
                     "latency-ssdlite_mobilenet_v2_pedestrian_300.png", "throughput-batch32.png"):
            with Image.open(self.path / name) as image:
                self.assertGreaterEqual(image.width, 800, name)
            self.assertIn(f"`{name}`", self.out)

    def test_failed_steps_are_listed(self):
        failed = self.sections["Failed steps (failures.txt)"]
        self.assertEqual(sum(ln.startswith("- FAILED") for ln in failed), 2)


class ReportOnEditedRuns(unittest.TestCase):
    def test_verdicts_follow_the_figures(self):
        with Folder() as path:
            def faster_int8(bench):
                bench["rows"][4]["latency_ms"] = 3.0   # batch 32: 5.0 / 3.0 = 1.67× FP16
            edit_json(path / "bench-ssd_mobilenet_v2_coco_300-int8.json", faster_int8)
            out = run_report(path).stdout
        self.assertRegex(out, rf"\(b\) {COCO} batch 32: INT8 10667/s vs FP16 6400/s whole frame: 1.67× .* "
                              r"→ \*\*MET\*\*")

    def test_a_peer_that_differs_from_onnx_runtime_is_flagged(self):
        with Folder() as path:
            def mismatch(peer):
                peer["matches_onnxruntime"], peer["onnxruntime_max_abs_diff"] = False, 0.5
            edit_json(path / "peer-ssd_mobilenet_v2_coco_300.json", mismatch)
            out = run_report(path).stdout
        self.assertIn("WARNING: the converted model does not match ONNX Runtime (max |difference| 0.5)", out)

    def test_without_gpu_txt_the_header_says_unknown(self):
        with Folder() as path:
            (path / "gpu.txt").unlink()
            result = run_report(path)
        self.assertEqual(result.returncode, 0, result.stderr)
        headers = [ln for ln in result.stdout.splitlines() if ln.startswith("_GPU: ")]
        self.assertEqual(len(headers), 12)
        self.assertTrue(all(h.startswith("_GPU: unknown") for h in headers))

    def test_a_folder_without_figures_is_an_error(self):
        with tempfile.TemporaryDirectory() as empty:
            result = run_report(empty)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("no bench-*.json or peer-*.json", result.stderr)
        self.assertFalse(re.search(r"\*\*MET\*\*", result.stdout))


if __name__ == "__main__":
    unittest.main(verbosity=2)
