"""The machine and software a benchmark ran on, for the header of its report."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

__all__ = ["Machine", "describe_machine"]

_PACKAGES = ("torch", "numpy", "safetensors", "zipnn", "zstandard", "transformers")


@dataclass(frozen=True, slots=True)
class Machine:
    """Where and when the numbers were taken."""

    cpu: str
    cores: int
    memory_gib: float
    system: str
    python: str
    packages: tuple[tuple[str, str], ...]
    weightbase_revision: str
    date: str

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["packages"] = dict(self.packages)
        return out

    def summary(self) -> str:
        """One paragraph naming the machine, the software and the date."""
        versions = ", ".join(f"{name} {version}" for name, version in self.packages)
        return (
            f"Measured {self.date} on {self.cpu}, {self.cores} cores, {self.memory_gib:.0f} GiB "
            f"RAM ({self.system}); Python {self.python}, {versions}; "
            f"weightbase {self.weightbase_revision}."
        )


def describe_machine() -> Machine:
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 1,
        memory_gib=_memory_gib(),
        system=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        packages=tuple((name, _version(name)) for name in _PACKAGES),
        weightbase_revision=_revision(),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    except (ValueError, OSError):
        return 0.0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


def _revision() -> str:
    """The commit the working tree is at, marked when it has uncommitted changes."""
    try:
        head = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "src")
    except (OSError, subprocess.SubprocessError):
        return "(revision unknown)"
    return f"{head} with uncommitted changes to src/" if dirty else head


def _git(*args: str) -> str:
    """What ``git args...`` prints in this checkout, stripped."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()
