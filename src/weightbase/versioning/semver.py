"""Semantic versions of models and datasets: parse, order, and bump them.

Versions follow SemVer 2.0.0 (``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``); a
leading ``v`` is accepted and dropped, anything else is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, get_args

import semver

from weightbase.errors import Conflict, ValidationError

__all__ = [
    "MAX_VERSION_PART",
    "BumpPart",
    "VersionKey",
    "bump",
    "canonical_version",
    "latest_version",
    "new_version",
    "next_version",
    "parse_version",
    "sort_versions",
    "version_columns",
    "version_key",
]

BumpPart = Literal["major", "minor", "patch"]

# (major, minor, patch, is_release, prerelease identifiers, build)
VersionKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...], str]

# The first version of a model that has none, by the part being bumped.
_FIRST = {"major": "1.0.0", "minor": "0.1.0", "patch": "0.0.1"}

#: The largest major, minor or patch number a version may have: the catalog keeps
#: each in an integer column, 32 bits wide on PostgreSQL.
MAX_VERSION_PART = 2**31 - 1
_BOUND = f"each of major, minor and patch is at most {MAX_VERSION_PART}"


def parse_version(text: str) -> semver.Version:
    """The ``semver.Version`` that ``text`` spells; ``ValidationError`` if it is not one."""
    if not isinstance(text, str):
        raise ValidationError(
            f"a version must be a string like '1.2.0', got {type(text).__name__}", version=text
        )
    body = text[1:] if text.startswith("v") else text
    try:
        return semver.Version.parse(body)
    except (ValueError, TypeError):
        raise ValidationError(
            f"{text!r} is not a semantic version; expected MAJOR.MINOR.PATCH such as '1.2.0' "
            "(optionally with a leading 'v', a '-prerelease' and a '+build')",
            version=text,
        ) from None


def new_version(text: str) -> str:
    """``text`` as the registry stores it, if a new version may have that number.

    ``ValidationError`` if it is not a version, or if a part is over
    :data:`MAX_VERSION_PART`.
    """
    parsed = parse_version(text)
    if max(parsed.major, parsed.minor, parsed.patch) > MAX_VERSION_PART:
        raise ValidationError(
            f"version {text!r} is out of bounds: {_BOUND}",
            version=text,
            bound=MAX_VERSION_PART,
        )
    return str(parsed)


def version_columns(number: str) -> dict[str, str | int | None]:
    """The catalog columns of a new version number: the text and its parts for ordering."""
    parsed = parse_version(new_version(number))
    return {
        "version": number,
        "major": parsed.major,
        "minor": parsed.minor,
        "patch": parsed.patch,
        "prerelease": parsed.prerelease or None,
    }


def canonical_version(text: str) -> str:
    """``text`` as the registry stores it: validated, without a leading ``v``."""
    return str(parse_version(text))


def version_key(text: str) -> VersionKey:
    """A sort key that orders versions by SemVer precedence.

    A pre-release sorts before its release; numeric pre-release identifiers
    compare as numbers and before alphanumeric ones; a shorter run of
    identifiers sorts first. Build metadata has no precedence in SemVer; it
    only breaks ties, so that sorting is deterministic.
    """
    version = parse_version(text)
    identifiers: tuple[tuple[int, int | str], ...] = ()
    if version.prerelease:
        identifiers = tuple(
            (0, int(part)) if part.isdigit() else (1, part)
            for part in version.prerelease.split(".")
        )
    return (
        version.major,
        version.minor,
        version.patch,
        0 if version.prerelease else 1,
        identifiers,
        version.build or "",
    )


def sort_versions(versions: Iterable[str]) -> list[str]:
    """``versions`` from oldest to newest by SemVer precedence (as given, not canonicalised)."""
    return sorted(versions, key=version_key)


def latest_version(versions: Iterable[str], *, stable_only: bool = False) -> str | None:
    """The newest of ``versions`` (``None`` if there are none).

    With ``stable_only``, pre-releases are passed over.
    """
    candidates = [
        version for version in versions if not (stable_only and parse_version(version).prerelease)
    ]
    return max(candidates, key=version_key) if candidates else None


def bump(latest: str | None, part: BumpPart) -> str:
    """The version after ``latest`` when bumping ``part``.

    From nothing, the first version is ``1.0.0`` for ``major``, ``0.1.0`` for
    ``minor`` and ``0.0.1`` for ``patch``. Bumping a pre-release releases it
    when it already leads to that part, as npm does: ``2.0.0-rc.1`` bumps to
    ``2.0.0`` (major), ``1.3.0-rc.1`` to ``1.3.0`` (minor, and ``2.0.0`` for
    major), ``1.2.4-rc.1`` to ``1.2.4`` (patch). Build metadata is dropped.
    """
    if part not in get_args(BumpPart):
        raise ValidationError(f"cannot bump {part!r}; choose one of major, minor, patch", part=part)
    if latest is None:
        return _FIRST[part]
    version = parse_version(latest)
    major, minor, patch = version.major, version.minor, version.patch
    pre = bool(version.prerelease)
    if part == "major":
        if not (pre and minor == 0 and patch == 0):
            major, minor, patch = major + 1, 0, 0
    elif part == "minor":
        if not (pre and patch == 0):
            minor, patch = minor + 1, 0
    elif not pre:
        patch += 1
    if max(major, minor, patch) > MAX_VERSION_PART:
        raise ValidationError(
            f"cannot bump {part} of {latest}: the version would be out of bounds ({_BOUND}); "
            "give the new version explicitly",
            version=latest,
            part=part,
            bound=MAX_VERSION_PART,
        )
    return f"{major}.{minor}.{patch}"


def next_version(taken: Sequence[str], explicit: str | None, part: BumpPart, *, what: str) -> str:
    """``explicit`` if it is free (else ``Conflict``), or the latest of ``taken`` bumped.

    A deleted version keeps its number, so a bump steps past numbers in use.
    """
    if explicit is not None:
        new_version(explicit)
        if explicit in taken:
            raise Conflict(
                f"{what}@{explicit} already exists; choose another version or let it be bumped",
                version=explicit,
            )
        return explicit
    number = bump(latest_version(taken), part)
    while number in taken:
        number = bump(number, part)
    return number
