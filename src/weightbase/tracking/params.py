"""Params and tags of runs: params are JSON values that never change once logged; tags come and go.

Params are kept as canonical JSON text (:func:`canonical_params`), so searching
by a param compares that text: ``1`` and ``1.0`` differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from weightbase.catalog.rows import dialect_insert
from weightbase.catalog.schema import RunParamRow, TagRow
from weightbase.catalog.values import JSONValue, json_object
from weightbase.errors import Conflict, ValidationError
from weightbase.tracking.context import RUN_KIND
from weightbase.tracking.reads import run_row
from weightbase.tracking.records import check_name

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from weightbase.tracking.context import TrackingContext

__all__ = [
    "MAX_TAG",
    "ParamsAndTags",
    "canonical_params",
    "check_tags",
    "insert_params",
    "insert_tags",
    "param_values",
]

#: The longest tag, in characters.
MAX_TAG = 255


class ParamsAndTags:
    """Logging params, and setting and removing tags, of existing runs."""

    def __init__(self, context: TrackingContext) -> None:
        self._context = context

    def log_params(self, run_id: int, params: Mapping[str, Any]) -> None:
        """Record params of a run; one logged before with another value is a ``Conflict``."""
        values = canonical_params(params)
        if not values:
            return

        def work(session: Session) -> None:
            run_row(session, run_id)
            existing = dict(
                session.execute(
                    select(RunParamRow.key, RunParamRow.value).where(
                        RunParamRow.run_id == run_id, RunParamRow.key.in_(values)
                    )
                ).all()
            )
            for key, value in values.items():
                if key in existing and existing[key] != value:
                    raise Conflict(
                        f"run {run_id} already has param {key!r} = {existing[key]}, "
                        f"not {value}; params cannot change",
                        run_id=run_id,
                        param=key,
                    )
            new = {key: value for key, value in values.items() if key not in existing}
            if not new:
                return
            insert_params(session, run_id, new)
            self._context.recorder.record(
                session,
                "run.log_params",
                RUN_KIND,
                run_id,
                after=param_values(new),
                event="run_params_logged",
            )

        self._context.catalog.write(work)

    def set_tags(self, run_id: int, tags: Iterable[str]) -> None:
        """Add tags to a run (tags it has already are kept once)."""
        tag_values = check_tags(tags)

        def work(session: Session) -> None:
            run_row(session, run_id)
            added = insert_tags(session, run_id, tag_values)
            if added:
                self._context.recorder.record(
                    session, "run.set_tags", RUN_KIND, run_id, after={"tags": added}
                )

        self._context.catalog.write(work)

    def remove_tags(self, run_id: int, tags: Iterable[str]) -> None:
        """Take tags off a run (absent ones are ignored)."""
        tag_values = check_tags(tags)

        def work(session: Session) -> None:
            run_row(session, run_id)
            removed = session.execute(
                delete(TagRow)
                .where(
                    TagRow.entity_kind == RUN_KIND,
                    TagRow.entity_id == run_id,
                    TagRow.tag.in_(tag_values),
                )
                .returning(TagRow.tag)
            ).scalars()
            gone = sorted(removed)
            if gone:
                self._context.recorder.record(
                    session, "run.remove_tags", RUN_KIND, run_id, before={"tags": gone}
                )

        self._context.catalog.write(work)


def canonical_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Param name → canonical JSON text of its value (names checked, values JSON-able)."""
    if not isinstance(params, Mapping):
        raise ValidationError(f"params must be a mapping, not {type(params).__name__}")
    for key in params:
        check_name(key, what="param")
    data = json_object(params, what="params")
    return {
        key: json.dumps(value, sort_keys=True, separators=(",", ":")) for key, value in data.items()
    }


def param_values(params: Mapping[str, str]) -> dict[str, JSONValue]:
    """Canonical params (:func:`canonical_params`) as the JSON values they hold."""
    return {key: json.loads(value) for key, value in params.items()}


def insert_params(session: Session, run_id: int, params: Mapping[str, str]) -> None:
    """Add canonical params to a run that has none of these names yet."""
    if params:
        session.execute(
            insert(RunParamRow),
            [{"run_id": run_id, "key": key, "value": value} for key, value in params.items()],
        )


def check_tags(tags: Iterable[str]) -> list[str]:
    """Tags, stripped, checked, sorted and each once (a lone string is one tag)."""
    if isinstance(tags, str):
        tags = [tags]
    found = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG:
            raise ValidationError(f"a tag must be 1 to {MAX_TAG} characters, not {tag!r}")
        if any(ord(c) < 32 or ord(c) == 127 for c in tag):
            raise ValidationError(f"a tag must not hold control characters, not {tag!r}")
        found.append(tag.strip())
    return sorted(set(found))


def insert_tags(session: Session, run_id: int, tags: Sequence[str]) -> list[str]:
    """Tag a run; the tags it did not have yet, sorted."""
    if not tags:
        return []
    inserted = session.execute(
        dialect_insert(session)(TagRow)
        .values([{"entity_kind": RUN_KIND, "entity_id": run_id, "tag": tag} for tag in tags])
        .on_conflict_do_nothing()
        .returning(TagRow.tag)
    ).scalars()
    return sorted(inserted)
