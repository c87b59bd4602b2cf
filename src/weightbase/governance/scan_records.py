"""What a model-file scan reports: findings, the files it judged, and the report that holds them.

The records are frozen and plain, so a report can be stored with a version, rendered by the
CLI or sent over HTTP without knowing how the scanner found what it found.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["Finding", "FindingKind", "ScanReport", "ScannedFile"]


class FindingKind(StrEnum):
    """Why something in a file is not clean."""

    UNSAFE_GLOBAL = "unsafe_global"  # a global that is not on the allowlist
    UNRESOLVED_GLOBAL = "unresolved_global"  # a STACK_GLOBAL whose operands are not constants
    UNRESOLVED_CALL = "unresolved_call"  # a call of something that is not a named global
    GLOBAL_STATE = "global_state"  # BUILD that sets attributes on a class or function
    EXTENSION_CODE = "extension_code"  # EXT1/EXT2/EXT4: a global named by a registry number
    MALFORMED = "malformed"  # bytes the scanner cannot walk to their end
    UNSUPPORTED = "unsupported"  # a file or member of a kind the scanner cannot judge
    TOO_DEEP = "too_deep"  # archives nested past the depth limit


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a loader could be made to do that a model file has no reason to.

    ``path`` is the file on disk; ``member`` the file inside it (``inner.zip!archive/data.pkl``
    for a member of a nested archive), ``None`` for the file itself. ``module``, ``name``,
    ``opcode`` and ``offset`` say where in a pickle, when the finding is in one.
    """

    kind: FindingKind
    path: str
    detail: str
    member: str | None = None
    module: str | None = None
    name: str | None = None
    opcode: str | None = None
    offset: int | None = None

    @property
    def global_name(self) -> str | None:
        """``module.name`` of the global, when the finding names one."""
        if self.module is None or self.name is None:
            return None
        return f"{self.module}.{self.name}"

    @property
    def location(self) -> str:
        """``path``, ``path!member`` or ``path!member@offset``."""
        where = self.path if self.member is None else f"{self.path}!{self.member}"
        return where if self.offset is None else f"{where}@{self.offset}"

    def to_dict(self) -> dict[str, Any]:
        """The finding as plain JSON-ready data."""
        return {
            "kind": str(self.kind),
            "path": self.path,
            "member": self.member,
            "global": self.global_name,
            "module": self.module,
            "name": self.name,
            "opcode": self.opcode,
            "offset": self.offset,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The finding ``to_dict`` wrote (its ``global`` is derived, so it is not read)."""
        return cls(
            FindingKind(data["kind"]),
            data["path"],
            data["detail"],
            member=data.get("member"),
            module=data.get("module"),
            name=data.get("name"),
            opcode=data.get("opcode"),
            offset=data.get("offset"),
        )


@dataclass(frozen=True, slots=True)
class ScannedFile:
    """A file or archive member the scanner judged, and the format it judged it as."""

    path: str
    format: str  # torch-zip, torch-legacy, pickle, joblib, numpy, safetensors, zip, tar, ...
    member: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The file as plain JSON-ready data."""
        return {"path": self.path, "member": self.member, "format": self.format}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScannedFile:
        """The file ``to_dict`` wrote."""
        return cls(data["path"], data["format"], data.get("member"))


@dataclass(frozen=True, slots=True)
class ScanReport:
    """The outcome of scanning a file or a folder: clean only when nothing was found."""

    target: str
    findings: tuple[Finding, ...]
    files_scanned: tuple[ScannedFile, ...]

    @property
    def clean(self) -> bool:
        """True when no file holds anything off the allowlist and every file could be judged."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "target": self.target,
            "clean": self.clean,
            "findings": [finding.to_dict() for finding in self.findings],
            "files_scanned": [scanned.to_dict() for scanned in self.files_scanned],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanReport:
        """The report ``to_dict`` wrote (``clean`` follows from its findings)."""
        return cls(
            data.get("target", ""),
            tuple(Finding.from_dict(finding) for finding in data.get("findings", ())),
            tuple(ScannedFile.from_dict(scanned) for scanned in data.get("files_scanned", ())),
        )
