"""Checkpoints: model, optimizer, scheduler, RNG and counters, each a delta of the last.

    checkpoints = CheckpointManager(wb.store, f"runs/{run.id}", keep_last=2,
                                    monitor="val_loss", mode="min")
    checkpoints.save(model=model, optimizer=opt, scheduler=sched, step=step,
                     epoch=epoch, metrics={"val_loss": 0.31})
    ...
    progress = checkpoints.load(model=model, optimizer=opt, scheduler=sched)
    # model, optimizer, scheduler and every RNG are as they were; go on from
    # progress.step

A checkpoint is a snapshot in the tensor store, pinned by the ref
``checkpoints/<namespace>/<step>``; its parent is the checkpoint before it, so
unchanged tensors are shared and changed ones are stored as XOR deltas where
that is smaller. The non-tensor parts of the state (hyper-parameters,
counters, Python's RNG) travel as a JSON file in the same snapshot; nothing
is pickled. Retention keeps the last ``keep_last`` checkpoints and the best
one by ``monitor``; dropped checkpoints lose their ref and their chunks go at
the store's next gc (those a kept delta still needs stay). The store is any
:class:`~weightbase.training.ports.TrainingStore`, ``wb.store`` embedded or remote.
The refs and manifests are read once per manager and kept as an index in memory;
with a ``log`` (:mod:`weightbase.training.records`) each save and prune is recorded.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from weightbase.errors import NotFound, ValidationError
from weightbase.tensors.manifest import validate_name
from weightbase.training.background import HostBuffers, OneWriter
from weightbase.training.state import capture_rng, flatten, restore_rng, unflatten

if TYPE_CHECKING:
    from weightbase.tensors import Snapshot
    from weightbase.training.ports import CheckpointLog, TrainingStore

__all__ = ["Checkpoint", "CheckpointManager", "Progress"]

STATE_FILE = "training_state.json"
_FORMAT = 1
_META = "checkpoint"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One saved training state: where it is and what was measured when it was taken."""

    ref: str
    snapshot_id: str
    step: int
    epoch: int | None
    metrics: Mapping[str, float] = field(default_factory=dict)
    created_at: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "snapshot_id": self.snapshot_id,
            "step": self.step,
            "epoch": self.epoch,
            "metrics": dict(self.metrics),
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Progress:
    """Where training stood at a checkpoint: counters, metrics and whatever ``extra`` was saved."""

    checkpoint: Checkpoint
    step: int
    epoch: int | None
    metrics: Mapping[str, float]
    extra: Any


class CheckpointManager:
    """Save, list, prune and restore the checkpoints of one training run (``namespace``)."""

    def __init__(
        self,
        store: TrainingStore,
        namespace: str,
        *,
        keep_last: int | None = 3,
        monitor: str | None = None,
        mode: Literal["min", "max"] = "min",
        codec: str | None = None,
        log: CheckpointLog | None = None,
    ) -> None:
        validate_name(f"checkpoints/{namespace}", what="checkpoint namespace")
        if keep_last is not None and keep_last < 1:
            raise ValidationError(
                f"keep_last must be at least 1 (or None: keep all), not {keep_last}"
            )
        if mode not in ("min", "max"):
            raise ValidationError(f"mode must be 'min' or 'max', not {mode!r}")
        self._store = store
        self._codec = codec
        self.namespace = namespace
        self._prefix = f"checkpoints/{namespace}/"
        # retention: what prune keeps
        self.keep_last = keep_last
        self.monitor = monitor
        self.mode = mode
        #: Where each checkpoint saved and pruned is recorded (nothing by default).
        self.log = log
        # ref -> checkpoint: read from the store once, then kept up to date by this
        # manager's saves and prunes (one run's checkpoints have one writer)
        self._index: dict[str, Checkpoint] | None = None
        #: The last checkpoint this manager stored (durable), in the foreground or not.
        self.last_saved: Checkpoint | None = None
        self._writes: OneWriter[Checkpoint] = OneWriter()
        self._buffers = HostBuffers()

    # -- saving ----------------------------------------------------------------------------

    def save(
        self,
        *,
        model: Any,
        optimizer: Any = None,
        scheduler: Any = None,
        step: int,
        epoch: int | None = None,
        metrics: Mapping[str, float] | None = None,
        extra: Any = None,
        rng: bool = True,
    ) -> Checkpoint:
        """Store the training state at ``step`` as a delta of the latest checkpoint, then prune.

        Returns once the checkpoint is durable (a background one in flight is waited for first).
        """
        self.flush()
        state = _capture(model, optimizer, scheduler, step, epoch, metrics, extra, rng)
        return self._write(state)

    def save_async(
        self,
        *,
        model: Any,
        optimizer: Any = None,
        scheduler: Any = None,
        step: int,
        epoch: int | None = None,
        metrics: Mapping[str, float] | None = None,
        extra: Any = None,
        rng: bool = True,
    ) -> None:
        """Copy the training state into host buffers, then store it in the background.

        The caller is blocked while the previous background checkpoint, if one is still
        in flight, becomes durable (at most one is in flight: the buffers are reused),
        then while the state is copied; hashing, deltas, compression and writes run on
        the writer thread. The checkpoint is visible (``list``, ``latest``, resume) only
        once durable; :meth:`flush` waits for it. An error of the background write is
        raised by the next ``save_async``, ``poll``, ``flush`` or any method that reads
        the checkpoints.
        """
        self._writes.wait()
        state = _capture(
            model, optimizer, scheduler, step, epoch, metrics, extra, rng, on_device=True
        )
        state.tensors = self._buffers.copy(state.tensors)
        self._writes.submit(lambda: self._write(state))

    @property
    def writing(self) -> bool:
        """Whether a background checkpoint is in flight (not yet durable)."""
        return self._writes.busy

    def poll(self) -> None:
        """Raise the error of a background checkpoint that failed, without waiting."""
        self._writes.poll()

    def flush(self) -> Checkpoint | None:
        """Wait until a background checkpoint in flight is durable (raising its error);
        returns the last checkpoint this manager stored."""
        self._writes.wait()
        return self.last_saved

    def close(self) -> None:
        """Flush, and stop the background writer's thread."""
        self._writes.close()

    def _write(self, state: _State) -> Checkpoint:
        import numpy as np
        import torch

        from weightbase.tensors.write import FileSource, WriteStats

        # one kind of tensor per write: NumPy arrays (NumPy's RNG state) go as torch views
        tensors = {
            name: torch.from_numpy(value) if isinstance(value, np.ndarray) else value
            for name, value in state.tensors.items()
        }
        kept = self._kept()
        latest = kept[-1] if kept else None
        ref = f"{self._prefix}{state.step:012d}"
        created = datetime.now(UTC).isoformat()
        summary = {
            "step": state.step,
            "epoch": state.epoch,
            "metrics": _json_metrics(state.metrics),
            "at": created,
        }
        stats = WriteStats()
        snapshot = self._store.write(
            tensors,
            ref=ref,
            parent=latest.snapshot_id if latest is not None else None,
            files=[FileSource(STATE_FILE, json.dumps(state.tree, separators=(",", ":")).encode())],
            metadata={"kind": "checkpoint", _META: json.dumps(summary)},
            codec=self._codec,
            stats=stats,
        )
        checkpoint = Checkpoint(ref, snapshot.id, state.step, state.epoch, state.metrics, created)
        self._known()[ref] = checkpoint  # durable now: the write set its ref last
        self.last_saved = checkpoint
        if self.log is not None:
            self.log.saved(checkpoint, stored_bytes=stats.new_bytes)
        self._prune()
        return checkpoint

    # -- finding ---------------------------------------------------------------------------

    def list(self) -> builtins.list[Checkpoint]:
        """Every kept checkpoint, oldest step first (a background one once it is durable).

        The store's refs and manifests are read on the first call only; this
        manager's saves and prunes keep that index up to date (:meth:`refresh`
        reads them again, should another process have changed them).
        """
        self.flush()
        return self._kept()

    def refresh(self) -> None:
        """Forget the index of kept checkpoints: the next call reads the store again."""
        self.flush()
        self._index = None

    def _kept(self) -> builtins.list[Checkpoint]:
        return sorted(self._known().values(), key=lambda checkpoint: checkpoint.step)

    def _known(self) -> dict[str, Checkpoint]:
        if self._index is None:
            self._index = {
                ref: self._checkpoint(ref, snapshot_id)
                for ref, snapshot_id in self._store.refs(self._prefix).items()
            }
        return self._index

    def latest(self) -> Checkpoint | None:
        kept = self.list()
        return kept[-1] if kept else None

    def best(self) -> Checkpoint | None:
        """The checkpoint with the best ``monitor`` value (the latest one without a monitor)."""
        return self._best(self.list())

    def _best(self, kept: builtins.list[Checkpoint]) -> Checkpoint | None:
        if self.monitor is None:
            return kept[-1] if kept else None
        scored = [c for c in kept if _finite(c.metrics.get(self.monitor))]
        if not scored:
            return None
        sign = 1.0 if self.mode == "min" else -1.0
        # ties go to the earlier checkpoint: it reached the value first
        return min(scored, key=lambda c: (sign * c.metrics[self.monitor], c.step))  # type: ignore[index]

    def prune(self) -> builtins.list[Checkpoint]:
        """Drop checkpoints beyond the last ``keep_last`` and the best; returns those dropped."""
        self.flush()
        return self._prune()

    def _prune(self) -> builtins.list[Checkpoint]:
        if self.keep_last is None:
            return []
        kept = self._kept()
        best = self._best(kept)
        keep = {c.ref for c in kept[-self.keep_last :]}
        if best is not None:
            keep.add(best.ref)
        dropped = [c for c in kept if c.ref not in keep]
        for checkpoint in dropped:
            with contextlib.suppress(NotFound):  # pruned by another process already
                self._store.delete_ref(checkpoint.ref)
            self._known().pop(checkpoint.ref, None)
        if dropped and self.log is not None:
            self.log.pruned([c.ref for c in dropped])
        return dropped

    # -- restoring -------------------------------------------------------------------------

    def load(
        self,
        checkpoint: Checkpoint | Literal["latest", "best"] = "latest",
        *,
        model: Any,
        optimizer: Any = None,
        scheduler: Any = None,
        rng: bool = True,
    ) -> Progress:
        """Put a checkpoint's state back into ``model`` (and optimizer, scheduler, RNGs).

        The model's parameter names, dtypes and shapes are checked against the
        checkpoint first: a checkpoint of another architecture raises
        ``ValidationError`` and nothing is changed.
        """
        chosen = self._choose(checkpoint)
        snapshot = self._store.snapshot(chosen.snapshot_id)
        tree = _read_tree(self._store, snapshot)
        _check_architecture(tree.get("architecture", {}), model.state_dict(), chosen)
        if optimizer is not None and "optimizer" not in tree:
            raise ValidationError(f"checkpoint at step {chosen.step} holds no optimizer state")
        if scheduler is not None and "scheduler" not in tree:
            raise ValidationError(f"checkpoint at step {chosen.step} holds no scheduler state")
        tensors = self._store.read_torch(snapshot)
        model.load_state_dict(unflatten(tree["model"], tensors))
        if optimizer is not None:
            optimizer.load_state_dict(unflatten(tree["optimizer"], tensors))
        if scheduler is not None:
            scheduler.load_state_dict(unflatten(tree["scheduler"], tensors))
        if rng and "rng" in tree:
            restore_rng(unflatten(tree["rng"], tensors))
        extra = unflatten(tree["extra"], tensors) if "extra" in tree else None
        return Progress(chosen, chosen.step, chosen.epoch, chosen.metrics, extra)

    def _choose(self, checkpoint: Checkpoint | str) -> Checkpoint:
        if isinstance(checkpoint, Checkpoint):
            return checkpoint
        if checkpoint not in ("latest", "best"):
            raise ValidationError(
                f"checkpoint must be a Checkpoint, 'latest' or 'best', not {checkpoint!r}"
            )
        found = self.latest() if checkpoint == "latest" else self.best()
        if found is None:
            raise NotFound(f"no checkpoints under {self._prefix}", namespace=self.namespace)
        return found

    def _checkpoint(self, ref: str, snapshot_id: str) -> Checkpoint:
        snapshot = self._store.snapshot(snapshot_id)
        summary = json.loads(snapshot.metadata.get(_META, "{}"))
        return Checkpoint(
            ref=ref,
            snapshot_id=snapshot_id,
            step=int(summary.get("step", 0)),
            epoch=summary.get("epoch"),
            metrics={k: float(v) for k, v in summary.get("metrics", {}).items()},
            created_at=summary.get("at", ""),
        )


@dataclass(slots=True)
class _State:
    """A checkpoint's state as captured: its JSON tree, tensors by name, counters, metrics."""

    tree: dict[str, Any]
    tensors: dict[str, Any]
    step: int
    epoch: int | None
    metrics: dict[str, float]


def _capture(
    model: Any,
    optimizer: Any,
    scheduler: Any,
    step: int,
    epoch: int | None,
    metrics: Mapping[str, float] | None,
    extra: Any,
    rng: bool,
    *,
    on_device: bool = False,
) -> _State:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValidationError(f"step must be a non-negative integer, not {step!r}")
    values = {name: float(value) for name, value in (metrics or {}).items()}
    tensors: dict[str, Any] = {}
    tree: dict[str, Any] = {"format": _FORMAT, "step": step, "epoch": epoch}
    model_state = model.state_dict()
    tree["model"] = flatten(model_state, "model", tensors, on_device=on_device)
    tree["architecture"] = {
        name: [str(value.dtype), list(value.shape)] for name, value in model_state.items()
    }
    if optimizer is not None:
        tree["optimizer"] = flatten(
            optimizer.state_dict(), "optimizer", tensors, on_device=on_device
        )
    if scheduler is not None:
        tree["scheduler"] = flatten(
            scheduler.state_dict(), "scheduler", tensors, on_device=on_device
        )
    if rng:
        tree["rng"] = flatten(capture_rng(), "rng", tensors, on_device=on_device)
    if extra is not None:
        tree["extra"] = flatten(extra, "extra", tensors, on_device=on_device)
    return _State(tree, tensors, step, epoch, values)


def _read_tree(store: TrainingStore, snapshot: Snapshot) -> dict[str, Any]:
    if STATE_FILE not in snapshot.files:
        raise ValidationError(f"snapshot {snapshot.id} is not a checkpoint (no {STATE_FILE})")
    tree = json.loads(store.file_bytes(snapshot, STATE_FILE))
    if not isinstance(tree, dict) or tree.get("format") != _FORMAT:
        raise ValidationError(f"checkpoint {snapshot.id} has an unknown format")
    return tree


def _check_architecture(
    saved: Mapping[str, Any], current: Mapping[str, Any], at: Checkpoint
) -> None:
    here = {name: [str(value.dtype), list(value.shape)] for name, value in current.items()}
    if dict(saved) == here:
        return
    missing = sorted(saved.keys() - here.keys())
    unexpected = sorted(here.keys() - saved.keys())
    reshaped = sorted(
        f"{name} {saved[name][1]}→{here[name][1]}"
        for name in saved.keys() & here.keys()
        if saved[name] != here[name]
    )
    parts = []
    if missing:
        parts.append(
            f"the model lacks {', '.join(missing[:5])}" + (" …" if len(missing) > 5 else "")
        )
    if unexpected:
        parts.append(
            f"the checkpoint lacks {', '.join(unexpected[:5])}"
            + (" …" if len(unexpected) > 5 else "")
        )
    if reshaped:
        parts.append(
            f"shapes or dtypes differ: {', '.join(reshaped[:5])}"
            + (" …" if len(reshaped) > 5 else "")
        )
    raise ValidationError(
        f"checkpoint at step {at.step} is of another architecture: {'; '.join(parts)}",
        checkpoint=at.ref,
    )


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _json_metrics(values: Mapping[str, float]) -> dict[str, float | str]:
    return {k: (v if math.isfinite(v) else repr(v)) for k, v in values.items()}
