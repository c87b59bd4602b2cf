"""A run's reproducibility record: the code, interpreter, packages, command, machine and seeds.

:class:`RunEnvironment` is what a run was made with, recorded when it starts
(see :mod:`weightbase.tracking.capture` for how it is read from this process);
:func:`compare_environments` says where two of them differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from weightbase.errors import ValidationError

__all__ = [
    "EnvironmentDiff",
    "GitState",
    "Gpu",
    "Hardware",
    "RunEnvironment",
    "check_seeds",
    "compare_environments",
]

T = TypeVar("T")

#: Seeds are what NumPy's global generator takes: whole numbers in [0, 2**32).
MAX_SEED = 2**32
#: The most characters a seed's name has (``random``, ``numpy``, ``torch``, or the caller's).
_MAX_SEED_NAME = 64


@dataclass(frozen=True, slots=True)
class GitState:
    """The working tree a run was started in.

    ``dirty``: tracked files differ from the commit; ``diff_sha256`` is the
    SHA-256 of ``git diff HEAD``'s output (of empty output when clean);
    ``untracked_files`` counts files git neither tracks nor ignores. ``problem``
    says why the rest is empty (``"not a git repository"``, ``"git is not installed"``).
    """

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    diff_sha256: str | None = None
    untracked_files: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "branch": self.branch,
            "dirty": self.dirty,
            "diff_sha256": self.diff_sha256,
            "untracked_files": self.untracked_files,
            "problem": self.problem,
        }

    @classmethod
    def from_dict(cls, data: object) -> GitState:
        fields_ = _object(data, "git")
        return cls(
            commit=_optional(fields_, "commit", str),
            branch=_optional(fields_, "branch", str),
            dirty=_optional(fields_, "dirty", bool),
            diff_sha256=_optional(fields_, "diff_sha256", str),
            untracked_files=_optional(fields_, "untracked_files", int),
            problem=_optional(fields_, "problem", str),
        )

    @property
    def summary(self) -> str:
        """One line: ``abc1234 on main, dirty (diff 5e3f…, 2 untracked)`` or the problem."""
        if self.commit is None:
            return self.problem or "unknown"
        text = f"{self.commit[:12]} on {self.branch or '(detached)'}"
        if self.dirty:
            digest = (self.diff_sha256 or "")[:12]
            text += f", dirty (diff sha256 {digest}…)"
        elif self.dirty is False:
            text += ", clean"
        if self.untracked_files:
            text += f", {self.untracked_files} untracked file(s)"
        return text


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU the run's process could see."""

    name: str
    memory_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "memory_bytes": self.memory_bytes}

    @classmethod
    def from_dict(cls, data: object) -> Gpu:
        fields_ = _object(data, "gpu")
        return cls(
            name=_required(fields_, "name", str, "gpu"),
            memory_bytes=_optional(fields_, "memory_bytes", int),
        )


@dataclass(frozen=True, slots=True)
class Hardware:
    """The machine: CPU model and logical cores, memory, GPUs.

    ``gpu_note`` says how GPUs were looked up, or why they were not
    (``"torch.cuda"``, ``"NVML"``, ``"CUDA is not available"``, …).
    """

    cpu_model: str | None = None
    cpu_count: int | None = None
    memory_bytes: int | None = None
    gpus: tuple[Gpu, ...] = ()
    gpu_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_model": self.cpu_model,
            "cpu_count": self.cpu_count,
            "memory_bytes": self.memory_bytes,
            "gpus": [gpu.to_dict() for gpu in self.gpus],
            "gpu_note": self.gpu_note,
        }

    @classmethod
    def from_dict(cls, data: object) -> Hardware:
        fields_ = _object(data, "hardware")
        gpus = fields_.get("gpus") or []
        if not isinstance(gpus, list):
            raise ValidationError(f"hardware.gpus must be a list, not {type(gpus).__name__}")
        return cls(
            cpu_model=_optional(fields_, "cpu_model", str),
            cpu_count=_optional(fields_, "cpu_count", int),
            memory_bytes=_optional(fields_, "memory_bytes", int),
            gpus=tuple(Gpu.from_dict(gpu) for gpu in gpus),
            gpu_note=_optional(fields_, "gpu_note", str),
        )

    @property
    def summary(self) -> str:
        """One line: ``AMD EPYC 7763 x16, 62.8 GiB, 1 GPU: NVIDIA H200``."""
        parts = [f"{self.cpu_model or 'unknown CPU'} x{self.cpu_count or '?'}"]
        if self.memory_bytes is not None:
            parts.append(f"{self.memory_bytes / 2**30:.1f} GiB")
        if self.gpus:
            names = ", ".join(gpu.name for gpu in self.gpus)
            parts.append(f"{len(self.gpus)} GPU{'s' if len(self.gpus) > 1 else ''}: {names}")
        else:
            parts.append("no GPU" + (f" ({self.gpu_note})" if self.gpu_note else ""))
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class RunEnvironment:
    """What a run was made with, as MLflow and W&B record it.

    ``captured_at`` is ``None`` for a run that opted out of capturing (then only
    ``seeds`` set through weightbase are kept). ``packages`` maps every installed
    distribution's normalised name to its version; ``argv`` is the command
    line with the values of secret-looking arguments replaced by ``<redacted>``;
    ``seeds`` maps what was seeded (``random``, ``numpy``, ``torch``) to the seed.
    No environment variable's value is ever recorded.
    """

    captured_at: datetime | None = None
    git: GitState | None = None
    python_version: str | None = None
    python_implementation: str | None = None
    packages: Mapping[str, str] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    hostname: str | None = None
    os: str | None = None
    platform: str | None = None
    hardware: Hardware | None = None
    seeds: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "packages", MappingProxyType(dict(sorted(self.packages.items()))))
        object.__setattr__(self, "seeds", MappingProxyType(dict(sorted(self.seeds.items()))))

    @property
    def captured(self) -> bool:
        """Whether the environment was captured (not only seeds recorded)."""
        return self.captured_at is not None

    def with_seeds(self, seeds: Mapping[str, int]) -> RunEnvironment:
        """This record with ``seeds`` added (a name seeded again takes the new seed)."""
        return RunEnvironment(
            captured_at=self.captured_at,
            git=self.git,
            python_version=self.python_version,
            python_implementation=self.python_implementation,
            packages=self.packages,
            argv=self.argv,
            hostname=self.hostname,
            os=self.os,
            platform=self.platform,
            hardware=self.hardware,
            seeds={**self.seeds, **check_seeds(seeds)},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "captured_at": None if self.captured_at is None else self.captured_at.isoformat(),
            "git": None if self.git is None else self.git.to_dict(),
            "python_version": self.python_version,
            "python_implementation": self.python_implementation,
            "packages": dict(self.packages),
            "argv": list(self.argv),
            "hostname": self.hostname,
            "os": self.os,
            "platform": self.platform,
            "hardware": None if self.hardware is None else self.hardware.to_dict(),
            "seeds": dict(self.seeds),
        }

    @classmethod
    def from_dict(cls, data: object) -> RunEnvironment:
        """The record from its ``to_dict`` form; ``ValidationError`` naming what is wrong."""
        fields_ = _object(data, "environment")
        captured_at = _optional(fields_, "captured_at", str)
        try:
            when = None if captured_at is None else datetime.fromisoformat(captured_at)
        except ValueError:
            raise ValidationError(
                f"environment.captured_at is not a time: {captured_at!r}"
            ) from None
        packages = fields_.get("packages") or {}
        if not isinstance(packages, dict) or not all(
            isinstance(name, str) and isinstance(version, str) for name, version in packages.items()
        ):
            raise ValidationError("environment.packages must map names to version strings")
        argv = fields_.get("argv") or []
        if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
            raise ValidationError("environment.argv must be a list of strings")
        git = fields_.get("git")
        hardware = fields_.get("hardware")
        return cls(
            captured_at=when,
            git=None if git is None else GitState.from_dict(git),
            python_version=_optional(fields_, "python_version", str),
            python_implementation=_optional(fields_, "python_implementation", str),
            packages=packages,
            argv=tuple(argv),
            hostname=_optional(fields_, "hostname", str),
            os=_optional(fields_, "os", str),
            platform=_optional(fields_, "platform", str),
            hardware=None if hardware is None else Hardware.from_dict(hardware),
            seeds=check_seeds(fields_.get("seeds") or {}),
        )


def check_seeds(seeds: object) -> dict[str, int]:
    """``seeds`` as a plain dict, if it maps short names to whole numbers in [0, 2**32)."""
    if not isinstance(seeds, Mapping):
        raise ValidationError(f"seeds must map names to whole numbers, not {seeds!r}")
    checked: dict[str, int] = {}
    for name, seed in seeds.items():
        if not isinstance(name, str) or not 1 <= len(name) <= _MAX_SEED_NAME:
            raise ValidationError(f"a seed's name is 1 to {_MAX_SEED_NAME} characters: {name!r}")
        checked[name] = check_seed(seed)
    return checked


def check_seed(seed: object) -> int:
    """``seed`` if it is a whole number in [0, 2**32) (what NumPy's global generator takes)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
        raise ValidationError(f"a seed is a whole number in [0, 2**32), not {seed!r}", seed=seed)
    return int(seed)


# -- comparing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvironmentDiff:
    """Where two runs' environments differ (``a`` the first, ``b`` the second).

    ``fields`` maps each differing field (``git.commit``, ``python_version``,
    ``hostname``, ``hardware.gpus``, ``seeds.numpy``, …) to its two values;
    ``packages_changed`` maps a package in both to its two versions;
    ``packages_added`` holds what only ``b`` has, ``packages_removed`` what only ``a`` has.
    """

    fields: Mapping[str, tuple[Any, Any]]
    packages_changed: Mapping[str, tuple[str, str]]
    packages_added: Mapping[str, str]
    packages_removed: Mapping[str, str]

    def __post_init__(self) -> None:
        for name in ("fields", "packages_changed", "packages_added", "packages_removed"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def same(self) -> bool:
        """Whether nothing compared differs."""
        return not (
            self.fields or self.packages_changed or self.packages_added or self.packages_removed
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "same": self.same,
            "fields": {name: list(values) for name, values in self.fields.items()},
            "packages_changed": {
                name: list(versions) for name, versions in self.packages_changed.items()
            },
            "packages_added": dict(self.packages_added),
            "packages_removed": dict(self.packages_removed),
        }

    def lines(self) -> list[str]:
        """The differences as lines of text, fields first, then packages."""
        found = [f"{name}: {_shown(a)} → {_shown(b)}" for name, (a, b) in self.fields.items()]
        found += [f"package {name}: {a} → {b}" for name, (a, b) in self.packages_changed.items()]
        found += [f"package {name}: added ({v})" for name, v in self.packages_added.items()]
        found += [f"package {name}: removed ({v})" for name, v in self.packages_removed.items()]
        return found


def compare_environments(a: RunEnvironment | None, b: RunEnvironment | None) -> EnvironmentDiff:
    """Where ``b``'s environment differs from ``a``'s; a missing one compares as empty."""
    first = _flat(a or RunEnvironment())
    second = _flat(b or RunEnvironment())
    differing = {
        name: (first.get(name), second.get(name))
        for name in sorted(first.keys() | second.keys(), key=_field_order)
        if first.get(name) != second.get(name)
    }
    packages_a = dict((a or RunEnvironment()).packages)
    packages_b = dict((b or RunEnvironment()).packages)
    return EnvironmentDiff(
        fields=differing,
        packages_changed={
            name: (packages_a[name], packages_b[name])
            for name in sorted(packages_a.keys() & packages_b.keys())
            if packages_a[name] != packages_b[name]
        },
        packages_added={n: packages_b[n] for n in sorted(packages_b.keys() - packages_a.keys())},
        packages_removed={n: packages_a[n] for n in sorted(packages_a.keys() - packages_b.keys())},
    )


#: The order fields are reported in: code first, then interpreter, host, machine, seeds.
_ORDER = ("git.", "python_", "argv", "hostname", "os", "platform", "hardware.", "seeds.")


def _field_order(name: str) -> tuple[int, str]:
    for index, prefix in enumerate(_ORDER):
        if name.startswith(prefix):
            return index, name
    return len(_ORDER), name


def _flat(environment: RunEnvironment) -> dict[str, Any]:
    """The compared fields of ``environment`` as ``dotted.name → value`` (JSON values)."""
    git = environment.git or GitState()
    hardware = environment.hardware or Hardware()
    flat: dict[str, Any] = {
        "git.commit": git.commit,
        "git.branch": git.branch,
        "git.dirty": git.dirty,
        "git.diff_sha256": git.diff_sha256,
        "python_version": environment.python_version,
        "python_implementation": environment.python_implementation,
        "argv": list(environment.argv),
        "hostname": environment.hostname,
        "os": environment.os,
        "platform": environment.platform,
        "hardware.cpu_model": hardware.cpu_model,
        "hardware.cpu_count": hardware.cpu_count,
        "hardware.memory_bytes": hardware.memory_bytes,
        "hardware.gpus": [gpu.name for gpu in hardware.gpus],
    }
    flat.update({f"seeds.{name}": seed for name, seed in environment.seeds.items()})
    return flat


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return " ".join(str(item) for item in value) or "(none)"
    return str(value)


# -- reading JSON ----------------------------------------------------------------------------


def _object(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValidationError(f"{what} must be a JSON object, not {type(data).__name__}")
    return data


def _optional(data: Mapping[str, Any], name: str, kind: type[T]) -> T | None:
    value = data.get(name)
    if value is None:
        return None
    return _checked(value, name, kind)


def _required(data: Mapping[str, Any], name: str, kind: type[T], what: str) -> T:
    value = data.get(name)
    if value is None:
        raise ValidationError(f"{what}.{name} is missing")
    return _checked(value, name, kind)


def _checked(value: object, name: str, kind: type[T]) -> T:
    # a bool is an int to Python, never to a record of counts and sizes
    is_bool = isinstance(value, bool)
    if not isinstance(value, kind) or (is_bool and kind is not bool):
        raise ValidationError(f"{name} must be {kind.__name__}, not {value!r}")
    return value
