"""The fleet manifest: which drives to replay, against which references, how.

A TOML file (or the same structure as JSON)::

    [defaults]                      # optional, for every drive below
    recorded_detections = true      # object-list replay (adasd replay --recorded-detections)
    config = "configs/candidate.toml"   # else the config each recording names
    args = ["--tol-time", "0.1"]    # more `adasd replay` options

    [[drive]]
    name = "ccrs_50"                # default: the recording's file name without .mcap
    recording = "rec/ccrs_50.mcap"
    reference = "refs/ccrs_50.mcap"

    [[folder]]                      # every *.mcap in `recordings`, sorted by name ...
    recordings = "rec"
    references = "refs"             # ... with the file of the same name here as its reference

Relative paths are taken from the manifest's folder and made absolute: the workers open them
where the manifest says, so recordings, references and outputs must be on a file system every
worker mounts at the same path (docs/FLEET.md).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

DRIVE_KEYS = {"name", "recording", "reference", "config", "recorded_detections", "args"}
DEFAULT_KEYS = DRIVE_KEYS - {"name", "recording", "reference"}
FOLDER_KEYS = {"recordings", "references"} | DEFAULT_KEYS


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class Drive:
    name: str
    recording: str
    reference: str
    config: str | None = None
    recorded_detections: bool = False
    args: tuple[str, ...] = field(default_factory=tuple)


def load(path: str | Path) -> list[Drive]:
    """The drives of the manifest at `path`, in manifest order (folders sorted by name)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ManifestError(f"{path}: cannot read the manifest: {e}") from e
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {e}") from e
    return parse(data, path)


def parse(data: dict, path: Path) -> list[Drive]:
    """The drives of a parsed manifest; `path` names it in errors and anchors relative paths."""
    unknown = set(data) - {"defaults", "drive", "folder"}
    if unknown:
        raise ManifestError(f"{path}: unknown table(s) {sorted(unknown)}; use defaults, drive, folder")
    base = path.parent.resolve()
    defaults = _options(data.get("defaults", {}), DEFAULT_KEYS, f"{path}: [defaults]", base, Drive("", "", ""))
    drives: list[Drive] = []
    for k, entry in enumerate(data.get("drive", [])):
        where = f"{path}: drive {k + 1}"
        d = _options(entry, DRIVE_KEYS, where, base, defaults)
        for key in ("recording", "reference"):
            if key not in entry:
                raise ManifestError(f"{where}: `{key}` is missing")
        recording = _path(entry["recording"], base, where, "recording")
        drives.append(replace(d, recording=recording, reference=_path(entry["reference"], base, where, "reference"),
                              name=str(entry.get("name", Path(recording).stem))))
    for k, entry in enumerate(data.get("folder", [])):
        where = f"{path}: folder {k + 1}"
        d = _options(entry, FOLDER_KEYS, where, base, defaults)
        for key in ("recordings", "references"):
            if key not in entry:
                raise ManifestError(f"{where}: `{key}` is missing")
        recordings = Path(_path(entry["recordings"], base, where, "recordings"))
        references = Path(_path(entry["references"], base, where, "references"))
        if not recordings.is_dir():
            raise ManifestError(f"{where}: recordings folder {recordings} does not exist")
        found = sorted(recordings.glob("*.mcap"))
        if not found:
            raise ManifestError(f"{where}: no *.mcap in {recordings}")
        for rec in found:
            drives.append(replace(d, name=rec.stem, recording=str(rec), reference=str(references / rec.name)))
    if not drives:
        raise ManifestError(f"{path}: no drives (add [[drive]] or [[folder]] entries)")
    seen: set[str] = set()
    for d in drives:
        if d.name in seen:
            raise ManifestError(f"{path}: drive name `{d.name}` twice; names must be unique (set `name`)")
        seen.add(d.name)
    return drives


def _path(value: object, base: Path, where: str, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}: `{key}` must be a path (a string)")
    return str((base / value).resolve()) if not Path(value).is_absolute() else value


def _options(entry: dict, allowed: set[str], where: str, base: Path, inherited: Drive) -> Drive:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: must be a table")
    unknown = set(entry) - allowed
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    d = inherited
    if "config" in entry:
        d = replace(d, config=_path(entry["config"], base, where, "config"))
    if "recorded_detections" in entry:
        if not isinstance(entry["recorded_detections"], bool):
            raise ManifestError(f"{where}: `recorded_detections` must be true or false")
        d = replace(d, recorded_detections=entry["recorded_detections"])
    if "args" in entry:
        args = entry["args"]
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ManifestError(f"{where}: `args` must be a list of strings")
        d = replace(d, args=tuple(args))
    return d
