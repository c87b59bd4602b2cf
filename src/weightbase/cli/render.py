"""Tables and lines that several commands print: versions, sizes, history, lineage, diffs.

Renderers build rich objects and strings and print nothing; a command decides where they go.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from weightbase.cli._common import human_bytes, human_count

if TYPE_CHECKING:
    from weightbase.governance.audit import AuditEntry
    from weightbase.lineage import Node, ReachedNode
    from weightbase.registry import ModelVersion, SnapshotDiff, TensorChange

__all__ = [
    "change_text",
    "diff_renderables",
    "history_table",
    "lineage_tree",
    "sizes_text",
    "table",
    "version_line",
]

# Longer values in a history entry (a model card) are cut to this many characters.
_MAX_VALUE_CHARS = 40


def table(
    columns: Sequence[str],
    *,
    title: str | None = None,
    right: Collection[str] = (),
    no_wrap: Collection[str] = (),
    plain: bool = False,
) -> Table:
    """An empty table with ``columns``; ``right`` ones right-aligned, ``plain`` without a box."""
    if plain:
        made = Table(box=None, header_style="bold", title=title, title_justify="left")
    else:
        made = Table(title=title)
    for column in columns:
        made.add_column(
            escape(column),
            justify="right" if column in right else "left",
            no_wrap=column in no_wrap,
        )
    return made


def sizes_text(logical_bytes: int, stored_bytes: int) -> str:
    """``86.6 MiB logical → 71.1 MiB stored``."""
    return f"{human_bytes(logical_bytes)} logical → {human_bytes(stored_bytes)} stored"


def version_line(found: ModelVersion, *, new_bytes: int | None = None) -> str:
    """``22.7 M parameters (F32), 86.6 MiB logical → 71.1 MiB stored[, 1.2 MiB new]``."""
    dtypes = ", ".join(sorted(found.dtypes)) or "no tensors"
    line = (
        f"{human_count(found.total_params)} parameters ({escape(dtypes)}), "
        f"{sizes_text(found.logical_bytes, found.stored_bytes)}"
    )
    if new_bytes is not None:
        line += f", {human_bytes(new_bytes)} new"
    return line


# -- history ----------------------------------------------------------------------------------


def _value_text(key: str, value: Any) -> str:
    """A value of an audit entry, short and on one line (a model card is not printed whole)."""
    if value is None:
        return "—"
    if key == "snapshot_id" and isinstance(value, str):
        return value[:12]
    if isinstance(value, Mapping):
        text = ", ".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(map(str, value))
    else:
        text = str(value)
    flat = " ".join(text.split())
    if len(flat) > _MAX_VALUE_CHARS:
        return f"{flat[: _MAX_VALUE_CHARS - 1]}… ({len(text):,} characters)"
    return flat


def change_text(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """An audit entry's change in one line: ``alias=production version: 0.1.0 → 0.2.0``."""
    old, new = dict(before or {}), dict(after or {})
    parts = []
    for key in [*old, *(k for k in new if k not in old)]:
        if key in old and key in new:
            if old[key] == new[key]:
                parts.append(f"{key}={_value_text(key, new[key])}")
            else:
                parts.append(f"{key}: {_value_text(key, old[key])} → {_value_text(key, new[key])}")
        elif key in new:
            parts.append(f"{key}={_value_text(key, new[key])}")
        else:
            parts.append(f"{key}={_value_text(key, old[key])} → —")
    if before and after is None:
        parts.append("(removed)")
    return " ".join(parts)


def history_table(entries: Sequence[AuditEntry], *, title: str | None = None) -> Table:
    """The audit trail as a table: time, actor, action, before → after, reason."""
    made = table(("time", "actor", "action", "change", "reason"), title=title)
    for entry in entries:
        made.add_row(
            entry.at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            escape(entry.actor),
            escape(entry.action),
            escape(change_text(entry.before, entry.after)),
            escape(entry.reason or ""),
        )
    return made


# -- lineage ----------------------------------------------------------------------------------


def lineage_tree(
    start: Node, reached: Sequence[ReachedNode], names: Mapping[Node, str], *, descendants: bool
) -> Tree:
    """A walk as a tree under its start; each branch is one edge (relation, then node)."""
    tree = Tree(f"[bold cyan]{escape(names[start])}[/]")
    branches: dict[Node, Tree] = {start: tree}
    for item in sorted(reached, key=lambda found: found.distance):
        label = (
            f"{escape(names[item.node])} [dim]({item.relation} the one above)[/]"
            if descendants
            else f"[dim]{item.relation} →[/] {escape(names[item.node])}"
        )
        branches[item.node] = branches.get(item.via, tree).add(label)
    return tree


# -- diff -------------------------------------------------------------------------------------


def _number(value: float, digits: int = 3) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.{digits}g}"


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def _tensor_change_text(change: TensorChange) -> str:
    dtype = (
        f"{change.dtype_before} → {change.dtype_after}"
        if change.dtype_changed
        else change.dtype_before
    )
    shape_before, shape_after = _shape_text(change.shape_before), _shape_text(change.shape_after)
    shape = f"{shape_before} → {shape_after}" if change.shape_changed else shape_before
    return f"{dtype} {shape}"


def diff_renderables(
    diff: SnapshotDiff, a: str, b: str, *, max_rows: int | None = 50
) -> list[RenderableType]:
    """What ``weightbase models diff`` prints: tables of tensors and metrics, and a summary."""
    parts: list[RenderableType] = []
    if diff.changed:
        changed = table(
            ("tensor", "dtype and shape", "max |Δ|", "rel L2", "cosine"),
            title=f"changed tensors, {a} → {b}",
            right=("max |Δ|", "rel L2", "cosine"),
        )
        changed.columns[0].overflow = "fold"
        rows = diff.changed if max_rows is None else diff.changed[:max_rows]
        for change in rows:
            values = change.values
            changed.add_row(
                escape(change.name),
                escape(_tensor_change_text(change)),
                _number(values.max_abs_diff) if values else "—",
                _number(values.relative_l2) if values else "—",
                _number(values.cosine, 6) if values else "—",
            )
        if len(rows) < len(diff.changed):
            changed.caption = f"… and {len(diff.changed) - len(rows)} more (--limit 0 shows all)"
        parts.append(changed)
    for label, summaries in (("added", diff.added), ("removed", diff.removed)):
        if summaries:
            lines = [f"[bold]{label}[/] ({len(summaries)}):"]
            lines += [f"  {escape(s.name)} {s.dtype} {_shape_text(s.shape)}" for s in summaries]
            parts.append(Text.from_markup("\n".join(lines)))
    if diff.metrics:
        metrics = table(("metric", a, b, "Δ"), title="metrics", right=(a, b, "Δ"))
        for metric in diff.metrics:
            delta = metric.delta
            metrics.add_row(
                escape(metric.name),
                "—" if metric.before is None else f"{metric.before:g}",
                "—" if metric.after is None else f"{metric.after:g}",
                "—" if delta is None else f"{delta:+g}",
            )
        parts.append(metrics)
    sharing = diff.sharing
    verdict = "[bold green]identical weights[/]; " if diff.identical else ""
    parts.append(
        Text.from_markup(
            f"{verdict}{len(diff.changed)} changed, {len(diff.added)} added, "
            f"{len(diff.removed)} removed, {len(diff.unchanged)} unchanged "
            f"({human_bytes(diff.unchanged_bytes)}); stored: "
            f"{human_bytes(sharing.shared_bytes)} shared, "
            f"{human_bytes(sharing.only_first_bytes)} only in {escape(a)}, "
            f"{human_bytes(sharing.only_second_bytes)} only in {escape(b)}"
        )
    )
    return parts
