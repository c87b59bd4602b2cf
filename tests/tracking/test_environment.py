"""Every run's reproducibility record: git state, Python, packages, command line, host, seeds.

Embedded and through a server (``remote_or_embedded``): a remote run records the
client's environment, captured where the run is started.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import random
import subprocess
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from weightbase.errors import NotFound, ValidationError
from weightbase.tracking import capture
from weightbase.tracking.capture import (
    REDACTED,
    capture_environment,
    installed_packages,
    normalised_name,
    redact_argv,
    seed_everything,
)
from weightbase.tracking.environment import (
    GitState,
    Gpu,
    Hardware,
    RunEnvironment,
    compare_environments,
)
from weightbase.workspace import Workspace

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit on branch ``trunk``, as the current folder."""
    folder = tmp_path / "project"
    folder.mkdir()
    subprocess.run([*GIT, "init", "-q", "-b", "trunk"], cwd=folder, check=True)
    (folder / "train.py").write_text("print('v1')\n")
    subprocess.run([*GIT, "add", "train.py"], cwd=folder, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "one"], cwd=folder, check=True)
    monkeypatch.chdir(folder)
    return folder


def _git(folder: Path, *arguments: str) -> bytes:
    return subprocess.run([*GIT, *arguments], cwd=folder, check=True, capture_output=True).stdout


def test_a_run_records_its_environment(
    remote_or_embedded: Workspace, repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wb = remote_or_embedded
    (repository / "train.py").write_text("print('v2')\n")  # a change not committed
    (repository / "notes.txt").write_text("scratch\n")  # untracked
    monkeypatch.setattr(sys, "argv", ["train.py", "--lr", "0.1", "--api-key", "hunter2"])
    with wb.runs.start("repro") as run:
        run.log({"loss": 1.0}, step=0)
    environment = wb.runs.environment(run.id)
    assert environment is not None
    assert environment.captured
    git = environment.git
    assert git is not None
    assert git.commit == _git(repository, "rev-parse", "HEAD").decode().strip()
    assert git.branch == "trunk"
    assert git.dirty is True
    assert git.diff_sha256 == hashlib.sha256(_git(repository, "diff", "HEAD")).hexdigest()
    assert git.untracked_files == 1
    assert git.problem is None
    assert environment.python_version == platform.python_version()
    assert environment.python_implementation == platform.python_implementation()
    assert environment.packages["numpy"] == importlib.metadata.version("numpy")
    assert len(environment.packages) == len(installed_packages()) > 10
    assert environment.argv == ("train.py", "--lr", "0.1", "--api-key", REDACTED)
    assert environment.hostname == capture_environment().hostname
    assert environment.os
    assert environment.platform
    assert environment.hardware is not None
    assert (environment.hardware.cpu_count or 0) >= 1
    assert "hunter2" not in json.dumps(environment.to_dict())


def test_a_clean_tree_has_the_digest_of_an_empty_diff(
    remote_or_embedded: Workspace, repository: Path
) -> None:
    run = remote_or_embedded.runs.create("repro")
    git = remote_or_embedded.runs.environment(run.id).git  # type: ignore[union-attr]
    assert git is not None
    assert (git.dirty, git.untracked_files) == (False, 0)
    assert git.diff_sha256 == hashlib.sha256(b"").hexdigest()


def test_outside_a_repository_or_without_git_the_run_still_starts(
    remote_or_embedded: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setattr(capture, "_main_folder", lambda: None)  # pytest's script is in a repo
    run = remote_or_embedded.runs.create("repro")
    found = remote_or_embedded.runs.environment(run.id)
    assert found is not None
    assert found.git == GitState(problem="not a git repository")

    monkeypatch.setenv("PATH", str(tmp_path / "no-binaries-here"))
    with remote_or_embedded.runs.start("repro") as started:
        started.log({"loss": 1.0})
    found = remote_or_embedded.runs.environment(started.id)
    assert found is not None
    assert found.git == GitState(problem="git is not installed")


def test_run_from_outside_its_repository_the_scripts_repository_counts(
    remote_or_embedded: Workspace,
    repository: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # python project/train.py from a folder outside the repository
    script = repository / "train.py"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(script), raising=False)
    run = remote_or_embedded.runs.create("repro")
    git = remote_or_embedded.runs.environment(run.id).git  # type: ignore[union-attr]
    assert git is not None
    assert git.commit == _git(repository, "rev-parse", "HEAD").decode().strip()
    assert git.branch == "trunk"


def test_a_part_that_cannot_be_read_leaves_a_gap(
    remote_or_embedded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise RuntimeError("metadata is broken")

    monkeypatch.setattr(capture, "installed_packages", broken)
    monkeypatch.setattr(capture, "_hardware", broken)
    run = remote_or_embedded.runs.create("repro")
    found = remote_or_embedded.runs.environment(run.id)
    assert found is not None
    assert found.captured
    assert dict(found.packages) == {}
    assert found.hardware is None
    assert found.python_version == platform.python_version()


def test_capturing_can_be_turned_off(
    remote_or_embedded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    wb = remote_or_embedded
    with wb.runs.start("repro", capture_environment=False) as run:
        run.log({"loss": 1.0})
    assert wb.runs.environment(run.id) is None
    assert wb.runs.environment(wb.runs.create("repro", capture_environment=False).id) is None
    monkeypatch.setenv("WEIGHTBASE_CAPTURE_ENVIRONMENT", "0")
    assert wb.runs.environment(wb.runs.create("repro").id) is None
    with pytest.raises(NotFound):
        wb.runs.environment(987654)


def test_seeds_set_through_weightbase_are_recorded(
    remote_or_embedded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "_seeds", {})
    wb = remote_or_embedded
    seeded = seed_everything(11)
    assert seeded["random"] == seeded["numpy"] == 11
    with wb.runs.start("repro") as run:
        assert dict(wb.runs.environment(run.id).seeds) == seeded  # type: ignore[union-attr]
        run.set_seed(42)
        drawn = (random.random(), float(np.random.random()))
        random.seed(42)
        np.random.seed(42)
        assert drawn == (random.random(), float(np.random.random()))
    found = wb.runs.environment(run.id)
    assert found is not None
    assert found.seeds == {name: 42 for name in seeded}

    # a run that opted out of capturing still keeps the seeds it set
    with wb.runs.start("repro", capture_environment=False) as quiet:
        quiet.set_seed(5)
    kept = wb.runs.environment(quiet.id)
    assert kept is not None
    assert not kept.captured
    assert kept.seeds == {name: 5 for name in seeded}


def test_seeding_everything_records_on_the_runs_open_now(
    remote_or_embedded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import weightbase

    monkeypatch.setattr(capture, "_seeds", {})
    wb = remote_or_embedded
    with wb.runs.start("repro") as first, wb.runs.start("repro") as second:
        seeded = weightbase.seed_everything(9)
    later = weightbase.seed_everything(10)
    for run in (first, second):
        assert wb.runs.environment(run.id).seeds == seeded  # type: ignore[union-attr]
    with wb.runs.start("repro") as third:
        pass
    assert wb.runs.environment(third.id).seeds == later  # type: ignore[union-attr]


def test_a_bad_seed_is_refused(
    remote_or_embedded: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "_seeds", {})
    with remote_or_embedded.runs.start("repro") as run:
        for seed in (-1, 2**32, True, 1.5, "7", None):
            with pytest.raises(ValidationError):
                seed_everything(seed)
            with pytest.raises(ValidationError):
                run.set_seed(seed)
            with pytest.raises(ValidationError):
                remote_or_embedded.runs.record_seeds(run.id, {"numpy": seed})
    with pytest.raises(ValidationError):
        remote_or_embedded.runs.record_seeds(run.id, {"": 1})
    assert remote_or_embedded.runs.environment(run.id).seeds == {}  # type: ignore[union-attr]


def test_runs_environments_compared(remote_or_embedded: Workspace) -> None:
    wb = remote_or_embedded
    base = _environment()
    other = RunEnvironment(
        captured_at=base.captured_at,
        git=GitState(commit="b" * 40, branch="main", dirty=True, diff_sha256="d" * 64),
        python_version="3.12.1",
        python_implementation="CPython",
        packages={"numpy": "2.1.0", "torch": "2.4.0", "scipy": "1.14.0"},
        argv=("train.py",),
        hostname="gpu-box",
        os="Linux 6.1",
        platform="Linux-6.1-x86_64",
        hardware=Hardware("EPYC", 64, 2**38, (Gpu("NVIDIA H100", 80 * 2**30),)),
        seeds={"numpy": 1},
    )
    first = wb.runs.create("repro", capture_environment=base)
    second = wb.runs.create("repro", capture_environment=other)
    diff = wb.runs.compare_environments(first.id, second.id)
    assert diff == compare_environments(base, other)
    assert diff.packages_changed == {"numpy": ("2.0.0", "2.1.0")}
    assert diff.packages_added == {"scipy": "1.14.0"}
    assert diff.packages_removed == {"pandas": "2.2.0"}
    assert set(diff.fields) == {
        "git.commit",
        "git.dirty",
        "git.diff_sha256",
        "python_version",
        "hostname",
        "hardware.cpu_model",
        "hardware.cpu_count",
        "hardware.memory_bytes",
        "hardware.gpus",
        "seeds.numpy",
    }
    assert diff.fields["python_version"] == ("3.11.9", "3.12.1")
    assert diff.fields["hardware.gpus"] == ([], ["NVIDIA H100"])
    assert "package numpy: 2.0.0 → 2.1.0" in diff.lines()
    assert not diff.same
    assert wb.runs.compare_environments(first.id, first.id).same


def test_argv_secrets_are_redacted() -> None:
    argv = [
        "train.py",
        "--api-key=abc",
        "--TOKEN",
        "t0k3n",
        "--password",
        "--verbose",
        "db.secret_value=shh",
        "--lr=0.1",
        "s3://user:pass@bucket/data",
        "--hf-token",
    ]
    assert redact_argv(argv) == (
        "train.py",
        f"--api-key={REDACTED}",
        "--TOKEN",
        REDACTED,
        "--password",
        "--verbose",
        f"db.secret_value={REDACTED}",
        "--lr=0.1",
        f"s3://{REDACTED}@bucket/data",
        "--hf-token",
    )


def test_environment_variables_values_are_never_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "value-that-must-not-leak")
    found = json.dumps(capture_environment(argv=["x"]).to_dict())
    assert "value-that-must-not-leak" not in found


def test_capturing_is_fast_and_reads_packages_once() -> None:
    installed_packages.cache_clear()
    started = time.perf_counter()
    capture_environment()  # the first capture reads the installed packages
    assert time.perf_counter() - started < 0.5  # ~15 ms here
    assert installed_packages() is installed_packages()
    started = time.perf_counter()
    for _ in range(5):
        capture_environment()
    # ~10 ms each here; a generous bound, for a shared and noisy machine
    assert (time.perf_counter() - started) / 5 < 0.25


def test_the_package_list_is_what_the_metadata_says() -> None:
    from_metadata: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = normalised_name(distribution.metadata["Name"])
        from_metadata.setdefault(name, distribution.version)
    assert dict(installed_packages()) == from_metadata
    assert normalised_name("PyYAML") == normalised_name("pyyaml") == "pyyaml"
    assert normalised_name("typing_extensions") == "typing-extensions"


def test_records_round_trip_and_bad_records_are_refused() -> None:
    environment = _environment()
    assert RunEnvironment.from_dict(json.loads(json.dumps(environment.to_dict()))) == environment
    for bad in (
        [],
        {"packages": ["numpy"]},
        {"argv": "train.py"},
        {"git": {"dirty": "yes"}},
        {"hardware": {"cpu_count": True}},
        {"hardware": {"gpus": [{"memory_bytes": 1}]}},
        {"seeds": {"numpy": -1}},
        {"captured_at": "yesterday"},
    ):
        with pytest.raises(ValidationError):
            RunEnvironment.from_dict(bad)


def _environment() -> RunEnvironment:
    return RunEnvironment(
        captured_at=datetime(2026, 12, 1, tzinfo=UTC),
        git=GitState(commit="a" * 40, branch="main", dirty=False, diff_sha256="0" * 64),
        python_version="3.11.9",
        python_implementation="CPython",
        packages={"numpy": "2.0.0", "torch": "2.4.0", "pandas": "2.2.0"},
        argv=("train.py",),
        hostname="laptop",
        os="Linux 6.1",
        platform="Linux-6.1-x86_64",
        hardware=Hardware("i7", 8, 2**34, (), "CUDA is not available"),
        seeds={"numpy": 0},
    )


class _FakeCuda:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def is_available(self) -> bool:
        return bool(self.names)

    def device_count(self) -> int:
        return len(self.names)

    def get_device_properties(self, index: int) -> Any:
        return types.SimpleNamespace(name=self.names[index], total_memory=(index + 1) * 2**30)


@pytest.mark.parametrize(
    ("names", "gpus", "note"),
    [
        (
            ["NVIDIA H200", "NVIDIA H200"],
            (Gpu("NVIDIA H200", 2**30), Gpu("NVIDIA H200", 2**31)),
            "torch.cuda",
        ),
        ([], (), "CUDA is not available"),
    ],
)
def test_gpus_come_from_torch_cuda_when_torch_is_imported(
    monkeypatch: pytest.MonkeyPatch, names: list[str], gpus: tuple[Gpu, ...], note: str
) -> None:
    fake = types.ModuleType("torch")
    fake.cuda = _FakeCuda(names)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)
    hardware = capture_environment().hardware
    assert hardware is not None
    assert (hardware.gpus, hardware.gpu_note) == (gpus, note)


def test_without_torch_or_nvml_no_gpu_is_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(capture.importlib.util, "find_spec", lambda name: None)
    hardware = capture_environment().hardware
    assert hardware is not None
    assert hardware.gpus == ()
    assert hardware.gpu_note == "torch not imported and pynvml not installed: GPUs not looked up"


def test_seed_everything_is_on_the_package_too() -> None:
    import weightbase

    assert weightbase.seed_everything is seed_everything
    with pytest.raises(AttributeError):
        weightbase.no_such_name  # type: ignore[attr-defined]  # noqa: B018
