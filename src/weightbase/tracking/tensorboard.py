"""Export a run to TensorBoard event files: every metric point as a scalar, params as hparams.

    folder = export_tensorboard(wb.runs, run.id, "tb-logs")   # tb-logs/run-<id>/events.out…
    # tensorboard --logdir tb-logs

Written with the ``tensorboard`` package alone (no TensorFlow, no torch):
install ``weightbase[tracking]``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightbase.errors import Conflict
from weightbase.tracking._extras import require

if TYPE_CHECKING:
    from weightbase.catalog.values import JSONValue
    from weightbase.tracking.records import Run
    from weightbase.tracking.service import RunTracker

__all__ = ["EVENT_FILE_PREFIX", "export_tensorboard"]

#: TensorBoard reads every file under a run folder whose name starts with this.
EVENT_FILE_PREFIX = "events.out.tfevents."
_PARAMS_TAG = "params"


def export_tensorboard(
    tracker: RunTracker,
    run_id: int,
    logdir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Write run ``run_id`` to ``logdir/run-<id>/`` as TensorBoard events; return that folder.

    Every point of every metric becomes a scalar event with its step and wall
    time (TensorBoard keeps scalars as 32-bit floats; NaN and ±inf stay as
    they are). Params go in as hparams (JSON text for values that are not
    numbers, strings or booleans) and as a markdown table in the text tab.
    A folder that already holds event files is a ``Conflict`` unless
    ``overwrite``, which replaces them.
    """
    event_pb2, summary_pb2, event_file_writer, hparams, text = require(
        "tensorboard.compat.proto.event_pb2",
        "tensorboard.compat.proto.summary_pb2",
        "tensorboard.summary.writer.event_file_writer",
        "tensorboard.plugins.hparams.summary_v2",
        "tensorboard.plugins.text.summary_v2",
        purpose="exporting to TensorBoard",
        extra="tracking",
    )
    run = tracker.get(run_id)
    folder = Path(os.fspath(logdir)) / f"run-{run.id}"
    existing = sorted(folder.glob(f"{EVENT_FILE_PREFIX}*")) if folder.is_dir() else []
    if existing and not overwrite:
        raise Conflict(
            f"{folder} already holds TensorBoard events (overwrite=True replaces them)",
            path=str(folder),
        )
    for path in existing:
        path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    writer = event_file_writer.EventFileWriter(str(folder), max_queue_size=1024)
    try:
        started = run.started_at.timestamp()
        if run.params:
            for summary in (
                hparams.hparams_pb(_hparams(run.params), start_time_secs=started),
                text.text_pb(_PARAMS_TAG, _params_table(run)),
            ):
                writer.add_event(event_pb2.Event(wall_time=started, step=0, summary=summary))
        for name in tracker.metric_names(run.id):
            history = tracker.history(run.id, name)
            for step, when, value in zip(
                history.steps.tolist(), history.times.tolist(), history.values.tolist(), strict=True
            ):
                summary = summary_pb2.Summary(
                    value=[summary_pb2.Summary.Value(tag=name, simple_value=value)]
                )
                writer.add_event(event_pb2.Event(wall_time=when, step=step, summary=summary))
    finally:
        writer.close()
    return folder


def _hparams(params: Any) -> dict[str, bool | float | int | str]:
    """Param values TensorBoard's hparams take: numbers, strings, booleans; JSON text otherwise."""
    values: dict[str, bool | float | int | str] = {}
    for key, value in params.items():
        if isinstance(value, bool | str) or (
            isinstance(value, int | float) and math.isfinite(value)
        ):
            values[key] = value
        else:
            values[key] = _json_text(value)
    return values


def _params_table(run: Run) -> str:
    rows = ["| param | value |", "| --- | --- |"]
    for key, value in run.params.items():
        cell = _json_text(value).replace("|", "\\|")
        rows.append(f"| {key} | {cell} |")
    return "\n".join(rows)


def _json_text(value: JSONValue) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
