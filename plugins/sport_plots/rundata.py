"""What a run folder holds that the figures and the report show: its certificates and its α sweeps.

A run folder is found through its ``manifest.json`` (:mod:`sport_core.runner`): every completed stage's
``certificate`` artifact (a certifier's ``certificate.json``) and ``sweep`` artifact (a ``projected-sweep``
stage's ``sweep.json``). A sweep whose certificate was an input file rather than a stage of the same run
(``recipes/exp2-from-exp1.toml``) brings its certificate along: ``sweep.json`` names it relative to the stage
folder, with its SHA-256, which is checked. Nothing here re-runs anything: figures show the run's own numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from sport_core.artifacts import read_json, sha256_file
from sport_core.certificates import read_certificate
from sport_core.errors import ArtifactError
from sport_core.paths import PathFile, read_paths

#: The two kinds of α sweep of the paper: one task policy projected at every α (Experiment 1), or one
#: fine-tuned policy per α (Experiment 2; the sweep's task is a policy set).
EXP1 = "Exp 1: projected task policy"
EXP2 = "Exp 2: Projected PPO"


@attrs.frozen(eq=False)
class Certificate:
    """A certificate and where it came from (``stage`` of this run, or ``file`` for an input file)."""

    path: Path
    data: dict[str, Any]
    sha256: str
    stage: str

    def bound_row(self, bound: float | None = None) -> dict[str, Any]:
        """The ``bounds`` row of ``bound`` (default: the largest bound, as the sweep's default)."""
        rows = self.data["bounds"]
        if bound is None:
            return max(rows, key=lambda r: r["bound"])
        for row in rows:
            if row["bound"] == bound:
                return row
        raise ArtifactError(f"certificate {self.path} has no bound {bound} (it has {[r['bound'] for r in rows]})")


@attrs.frozen(eq=False)
class Sweep:
    """A ``projected-sweep`` result: ``data`` is its ``sweep.json``, ``certificate`` the one it was run against."""

    path: Path
    data: dict[str, Any]
    sha256: str
    stage: str
    certificate: Certificate

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def experiment(self) -> str:
        return EXP2 if "policy_set" in self.data.get("task_policy", {}) else EXP1

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.data["rows"]

    def row(self, alpha: float) -> dict[str, Any]:
        for row in self.rows:
            if row["alpha"] == alpha:
                return row
        raise KeyError(alpha)

    def paths(self, alpha: float) -> PathFile | None:
        """The kept episode paths of α (None if the sweep kept none), hash-checked."""
        kept = self.row(alpha).get("paths")
        if not kept:
            return None
        file = self.folder / kept["path"]
        if not file.is_file() or sha256_file(file) != kept["sha256"]:
            raise ArtifactError(f"{file}: missing or altered (sweep.json records sha256 {kept['sha256'][:12]}…)")
        return read_paths(file, made_by=f"stage {self.stage!r}")

    def episode_store(self, alpha: float) -> Path:
        entry = self.row(alpha)["episode_store"]
        return self.folder / entry["path"]


@attrs.frozen(eq=False)
class RunData:
    """One run folder: name, seed, manifest, certificates and sweeps (in stage order)."""

    folder: Path
    manifest: dict[str, Any]
    certificates: tuple[Certificate, ...]
    sweeps: tuple[Sweep, ...]

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def seed(self) -> int | None:
        for item in (*self.sweeps, *self.certificates):
            if "seed" in item.data:
                return int(item.data["seed"])
        return None

    @property
    def certificate(self) -> Certificate | None:
        """The run's certificate: its own certifier's, else the one its first sweep was run against."""
        if self.certificates:
            return self.certificates[0]
        return self.sweeps[0].certificate if self.sweeps else None


def _certificate(path: Path, stage: str) -> Certificate:
    return Certificate(path, read_certificate(path), sha256_file(path), stage)


def _sweep(path: Path, stage: str, own: dict[Path, Certificate]) -> Sweep:
    data = read_json(path, what="sweep result", made_by=f"stage {stage!r}")
    if not isinstance(data, dict) or data.get("format") != "sport-projected-sweep-v1":
        raise ArtifactError(f"{path} is not a sport-projected-sweep-v1 result (foreign or corrupt file)")
    ref = data["certificate"]
    cert_path = (path.parent / ref["path"]).resolve()
    cert = own.get(cert_path)
    if cert is None:
        if not cert_path.is_file():
            raise ArtifactError(
                f"{path} was run against the certificate {ref['path']} (relative to {path.parent}), which does not "
                "exist there any more; keep the certifier's run folder next to this one"
            )
        cert = _certificate(cert_path, f"file {ref['path']}")
    if cert.sha256 != ref["sha256"]:
        raise ArtifactError(f"{path}: its certificate {cert_path} has changed since the sweep (sha256 differs)")
    return Sweep(path, data, sha256_file(path), stage, cert)


def load_run(folder: str | Path, stages: Iterable[str] | None = None) -> RunData:
    """Read a run folder's certificates and sweeps (only those of ``stages`` if given); a folder without
    them is a one-line error."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise ArtifactError(f"{folder} is not a run folder (no manifest.json); give the folder `sport run` made")
    manifest = read_json(manifest_path, what="run manifest")
    certs: dict[Path, Certificate] = {}
    sweep_refs: list[tuple[str, Path]] = []
    wanted = None if stages is None else set(stages)
    for stage, entry in manifest.get("stages", {}).items():
        if entry.get("status") != "completed" or (wanted is not None and stage not in wanted):
            continue
        outputs = entry.get("outputs", {})
        if "certificate" in outputs:
            path = (folder / outputs["certificate"]["path"]).resolve()
            certs[path] = _certificate(path, stage)
        if "sweep" in outputs:
            sweep_refs.append((stage, folder / outputs["sweep"]["path"]))
    sweeps = tuple(_sweep(path, stage, certs) for stage, path in sweep_refs)
    if not certs and not sweeps:
        raise ArtifactError(
            f"run {folder} has no completed certificate or sweep: figures need a certifier stage (e.g. "
            "certify-base of recipes/exp1.toml) or a projected-sweep stage to have run"
        )
    return RunData(folder, manifest, tuple(certs.values()), sweeps)


def load_runs(folders: Iterable[str | Path]) -> list[RunData]:
    runs = [load_run(f) for f in folders]
    if not runs:
        raise ArtifactError("give at least one run folder")
    return runs
