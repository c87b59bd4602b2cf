"""``python -m benchmarks tracking``: run tracking and checkpoints against MLflow and torch.save.

Four measurements, each side by side with its anchor in the same process:

1. logging throughput (points/s): ``run.log`` through the buffered writer, final
   flush included, against MLflow's ``log_batch`` (1,000 metrics a call) and
   ``log_metric`` (time-boxed), MLflow on its SQLite backend in a fresh folder;
2. reading a 20,000-point history: ``wb.runs.history`` against
   ``MlflowClient().get_metric_history``;
3. checkpoints of an all-MiniLM-L6-v2 fine-tune (AdamW, real steps between
   checkpoints): ``CheckpointManager.save`` (deltas after the first) against
   ``torch.save`` of the model and optimizer state dicts with fsync;
4. the training-loop overhead of the ``Training`` callbacks with a checkpoint
   per epoch (``benchmarks.training_overhead`` where it exists).
"""

from __future__ import annotations

import gc
import importlib
import inspect
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.timing import Timing, fsync_path
from weightbase.samples import minilm_folder

__all__ = ["TrackingConfig", "TrackingResults", "run_tracking"]

Log = Callable[[str], None]

#: Metrics logged per step in the throughput test (as a training loop logs loss, lr, …).
METRICS_PER_STEP = 10
MLFLOW_BATCH = 1000
HISTORY_METRIC = "train/loss"


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """Workload sizes; ``create`` picks the full or the ``--quick`` ones."""

    workdir: Path
    quick: bool
    log_points: int
    mlflow_batch_points: int
    mlflow_metric_seconds: float
    mlflow_metric_max_points: int
    history_points: int
    history_repeats: int
    mlflow_history_repeats: int
    checkpoints: int
    steps_between: int
    batch_size: int
    sequence_length: int
    seed: int = 0

    @classmethod
    def create(cls, *, workdir: Path, quick: bool) -> TrackingConfig:
        if quick:
            return cls(
                workdir=workdir,
                quick=True,
                log_points=20_000,
                mlflow_batch_points=2_000,
                mlflow_metric_seconds=0.5,
                mlflow_metric_max_points=200,
                history_points=2_000,
                history_repeats=3,
                mlflow_history_repeats=1,
                checkpoints=2,
                steps_between=1,
                batch_size=2,
                sequence_length=16,
            )
        return cls(
            workdir=workdir,
            quick=False,
            log_points=1_000_000,
            mlflow_batch_points=50_000,
            mlflow_metric_seconds=5.0,
            mlflow_metric_max_points=5_000,
            history_points=20_000,
            history_repeats=21,
            mlflow_history_repeats=5,
            checkpoints=6,
            steps_between=2,
            batch_size=8,
            sequence_length=64,
        )


@dataclass(frozen=True, slots=True)
class Throughput:
    """Points logged and the seconds they took (flush included)."""

    points: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.points / self.seconds

    def to_dict(self) -> dict[str, float]:
        return {"points": self.points, "seconds": round(self.seconds, 6), "points_per_s": self.rate}


@dataclass(frozen=True, slots=True)
class CheckpointRound:
    """One checkpoint saved both ways, after the same training steps."""

    weightbase_bytes: int
    weightbase_seconds: float
    torch_bytes: int
    torch_seconds: float

    def to_dict(self) -> dict[str, float]:
        return {
            "weightbase_bytes": self.weightbase_bytes,
            "weightbase_s": round(self.weightbase_seconds, 6),
            "torch_save_bytes": self.torch_bytes,
            "torch_save_s": round(self.torch_seconds, 6),
        }


@dataclass(frozen=True, slots=True)
class TrackingResults:
    config: TrackingConfig
    weightbase_log: Throughput
    mlflow_batch: Throughput
    mlflow_metric: Throughput
    weightbase_history: Timing
    mlflow_history: Timing
    checkpoints: tuple[CheckpointRound, ...]
    losses: tuple[float, ...]
    overhead: dict[str, float]
    overhead_source: str
    mlflow_version: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def steady(self) -> tuple[CheckpointRound, ...]:
        """The checkpoints after the first (deltas of the one before)."""
        return self.checkpoints[1:] or self.checkpoints

    def steady_median(self, attribute: str) -> float:
        return float(statistics.median(getattr(round_, attribute) for round_ in self.steady))

    def summary(self) -> dict[str, float]:
        first = self.checkpoints[0]
        return {
            "log_speedup_vs_mlflow_batch": self.weightbase_log.rate / self.mlflow_batch.rate,
            "log_speedup_vs_mlflow_metric": self.weightbase_log.rate / self.mlflow_metric.rate,
            "history_read_speedup_vs_mlflow": (
                self.mlflow_history.median / self.weightbase_history.median
            ),
            "checkpoint_bytes_vs_torch_save": (
                self.steady_median("weightbase_bytes") / self.steady_median("torch_bytes")
            ),
            "checkpoint_time_vs_torch_save": (
                self.steady_median("weightbase_seconds") / self.steady_median("torch_seconds")
            ),
            "callback_overhead_pct": self.overhead["callback_overhead_pct"],
            "first_checkpoint_bytes_vs_torch_save": first.weightbase_bytes / first.torch_bytes,
            "first_checkpoint_time_vs_torch_save": first.weightbase_seconds / first.torch_seconds,
            "weightbase_log_points_per_s": self.weightbase_log.rate,
            "mlflow_log_batch_points_per_s": self.mlflow_batch.rate,
            "mlflow_log_metric_points_per_s": self.mlflow_metric.rate,
        }

    def details(self) -> dict[str, Any]:
        return {
            "quick": self.config.quick,
            "mlflow": self.mlflow_version,
            "logging": {
                "weightbase_run_log": self.weightbase_log.to_dict(),
                "mlflow_log_batch": self.mlflow_batch.to_dict(),
                "mlflow_log_metric": self.mlflow_metric.to_dict(),
                "metrics_per_step": METRICS_PER_STEP,
            },
            "history": {
                "points": self.config.history_points,
                "weightbase_history": self.weightbase_history.to_dict(),
                "mlflow_get_metric_history": self.mlflow_history.to_dict(),
            },
            "checkpoints": {
                "rounds": [round_.to_dict() for round_ in self.checkpoints],
                "steps_between": self.config.steps_between,
                "losses": list(self.losses),
            },
            "overhead": {"source": self.overhead_source, **self.overhead},
            **self.extra,
        }


def run_tracking(config: TrackingConfig, log: Log) -> TrackingResults:
    import weightbase

    mlflow = _quiet_mlflow()
    with weightbase.open(config.workdir / "weightbase") as wb:
        log("[1/4] logging throughput: run.log vs MLflow log_batch and log_metric")
        weightbase_log = _weightbase_logging(wb, config)
        log(f"  weightbase run.log: {weightbase_log.rate:,.0f} points/s")
        client, experiment_id = _mlflow_client(mlflow, config.workdir / "mlflow")
        mlflow_batch = _mlflow_batch_logging(client, experiment_id, config)
        log(f"  MLflow log_batch: {mlflow_batch.rate:,.0f} points/s")
        mlflow_metric = _mlflow_metric_logging(client, experiment_id, config)
        log(f"  MLflow log_metric: {mlflow_metric.rate:,.0f} points/s")

        log(f"[2/4] reading a {config.history_points:,}-point history")
        weightbase_history, mlflow_history = _history(wb, client, experiment_id, config)
        log(
            f"  weightbase {weightbase_history.median * 1e3:.2f} ms, "
            f"MLflow {mlflow_history.median * 1e3:.1f} ms"
        )

        log("[3/4] checkpoints of a MiniLM fine-tune: CheckpointManager.save vs torch.save")
        rounds, losses = _checkpoints(wb, config, log)

    log("[4/4] training-loop overhead of the Training callbacks")
    overhead, source = _overhead(config, log)
    log(f"  callback overhead {overhead['callback_overhead_pct']:.2f}% ({source})")
    return TrackingResults(
        config=config,
        weightbase_log=weightbase_log,
        mlflow_batch=mlflow_batch,
        mlflow_metric=mlflow_metric,
        weightbase_history=weightbase_history,
        mlflow_history=mlflow_history,
        checkpoints=tuple(rounds),
        losses=tuple(losses),
        overhead=overhead,
        overhead_source=source,
        mlflow_version=str(getattr(mlflow, "__version__", "?")),
    )


# -- 1. logging throughput ------------------------------------------------------------------


def _weightbase_logging(wb: Any, config: TrackingConfig) -> Throughput:
    steps = config.log_points // METRICS_PER_STEP
    names = [f"train/metric_{index}" for index in range(METRICS_PER_STEP)]
    values = np.random.default_rng(config.seed).random((steps, METRICS_PER_STEP)).tolist()
    with wb.runs.start("bench-logging") as run:
        gc.collect()
        started = time.perf_counter()
        for step in range(steps):
            row = values[step]
            run.log(dict(zip(names, row, strict=True)), step=step)
        run.flush()
        seconds = time.perf_counter() - started
    return Throughput(steps * METRICS_PER_STEP, seconds)


def _quiet_mlflow() -> Any:
    # MLflow logs every table it creates and warns about its own deprecations; neither
    # is part of what is measured.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return importlib.import_module("mlflow")


def _same_durability_as_weightbase(database: Path) -> None:
    """Give MLflow's connections to ``database`` weightbase's catalog settings.

    MLflow opens SQLite with the library defaults (rollback journal,
    synchronous=FULL); weightbase's catalog runs WAL with synchronous=FULL.
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = str(database.resolve())

    def settings(dbapi_connection: Any, _record: Any) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list")]
        if target in files:
            dbapi_connection.execute("PRAGMA journal_mode = WAL")
            dbapi_connection.execute("PRAGMA synchronous = FULL")

    if not event.contains(Engine, "connect", settings):
        event.listen(Engine, "connect", settings)


def _mlflow_client(mlflow: Any, folder: Path) -> tuple[Any, str]:
    from mlflow.tracking import MlflowClient

    folder.mkdir(parents=True, exist_ok=True)
    _same_durability_as_weightbase(folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(
        "bench", artifact_location=(folder / "artifacts").as_uri()
    )
    return client, str(experiment_id)


def _mlflow_batch_logging(client: Any, experiment_id: str, config: TrackingConfig) -> Throughput:
    from mlflow.entities import Metric

    steps = config.mlflow_batch_points // METRICS_PER_STEP
    names = [f"train/metric_{index}" for index in range(METRICS_PER_STEP)]
    values = np.random.default_rng(config.seed).random((steps, METRICS_PER_STEP)).tolist()
    run_id = client.create_run(experiment_id).info.run_id
    per_batch = MLFLOW_BATCH // METRICS_PER_STEP
    gc.collect()
    started = time.perf_counter()
    for first in range(0, steps, per_batch):
        now = int(time.time() * 1000)
        batch = [
            Metric(name, value, now, step)
            for step in range(first, min(first + per_batch, steps))
            for name, value in zip(names, values[step], strict=True)
        ]
        client.log_batch(run_id, metrics=batch)
    seconds = time.perf_counter() - started
    client.set_terminated(run_id)
    return Throughput(steps * METRICS_PER_STEP, seconds)


def _mlflow_metric_logging(client: Any, experiment_id: str, config: TrackingConfig) -> Throughput:
    run_id = client.create_run(experiment_id).info.run_id
    rng = np.random.default_rng(config.seed)
    points = 0
    gc.collect()
    started = time.perf_counter()
    deadline = started + config.mlflow_metric_seconds
    while points < config.mlflow_metric_max_points and time.perf_counter() < deadline:
        client.log_metric(run_id, "train/loss", float(rng.random()), step=points)
        points += 1
    seconds = time.perf_counter() - started
    client.set_terminated(run_id)
    return Throughput(points, seconds)


# -- 2. history reads -------------------------------------------------------------------------


def _history(
    wb: Any, client: Any, experiment_id: str, config: TrackingConfig
) -> tuple[Timing, Timing]:
    from mlflow.entities import Metric

    count = config.history_points
    values = np.random.default_rng(config.seed).random(count)
    times = time.time() - count + np.arange(count, dtype=np.float64)
    with wb.runs.start("bench-history") as run:
        run.log_series(HISTORY_METRIC, values, steps=np.arange(count), times=times)
    run_id = client.create_run(experiment_id).info.run_id
    for first in range(0, count, MLFLOW_BATCH):
        client.log_batch(
            run_id,
            metrics=[
                Metric(HISTORY_METRIC, float(values[i]), int(times[i] * 1000), i)
                for i in range(first, min(first + MLFLOW_BATCH, count))
            ],
        )
    client.set_terminated(run_id)

    # one untimed read each: the first read of either pays for connecting and caching
    history = wb.runs.history(run.id, HISTORY_METRIC)
    assert len(history) == count
    assert len(client.get_metric_history(run_id, HISTORY_METRIC)) == count
    weightbase_samples: list[float] = []
    for _ in range(config.history_repeats):
        with _timed(weightbase_samples):
            wb.runs.history(run.id, HISTORY_METRIC)
    mlflow_samples: list[float] = []
    for _ in range(config.mlflow_history_repeats):
        with _timed(mlflow_samples):
            client.get_metric_history(run_id, HISTORY_METRIC)
    return Timing(tuple(weightbase_samples)), Timing(tuple(mlflow_samples))


@contextmanager
def _timed(samples: list[float]) -> Iterator[None]:
    gc.collect()
    started = time.perf_counter()
    yield
    samples.append(time.perf_counter() - started)


# -- 3. checkpoints -----------------------------------------------------------------------


def _checkpoints(
    wb: Any, config: TrackingConfig, log: Log
) -> tuple[list[CheckpointRound], list[float]]:
    import torch

    from weightbase.training import CheckpointManager

    model, optimizer = _minilm(config)
    vocab = int(model.config.vocab_size)
    generator = torch.Generator().manual_seed(config.seed)
    store_root = config.workdir / "weightbase" / "store"
    manager = CheckpointManager(wb.store, "bench-minilm", keep_last=None)
    torch_folder = config.workdir / "torch-save"
    torch_folder.mkdir()
    losses: list[float] = []
    rounds: list[CheckpointRound] = []
    step = 0
    for index in range(config.checkpoints):
        for _ in range(config.steps_between):
            losses.append(_train_step(model, optimizer, vocab, generator, config))
            step += 1
        # alternate which goes first, so that neither always meets a colder page cache
        order = ("weightbase", "torch") if index % 2 == 0 else ("torch", "weightbase")
        measured: dict[str, tuple[int, float]] = {}
        for tool in order:
            gc.collect()
            if tool == "weightbase":
                before = _folder_bytes(store_root)
                started = time.perf_counter()
                manager.save(model=model, optimizer=optimizer, step=step, rng=False)
                seconds = time.perf_counter() - started
                measured[tool] = (_folder_bytes(store_root) - before, seconds)
            else:
                path = torch_folder / f"checkpoint-{step:06d}.pt"
                started = time.perf_counter()
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)
                fsync_path(path)
                seconds = time.perf_counter() - started
                measured[tool] = (path.stat().st_size, seconds)
        round_ = CheckpointRound(*measured["weightbase"], *measured["torch"])
        rounds.append(round_)
        log(
            f"  checkpoint {index + 1}/{config.checkpoints} at step {step}: weightbase "
            f"{round_.weightbase_bytes / 1e6:.1f} MB in {round_.weightbase_seconds:.2f} s, "
            f"torch.save {round_.torch_bytes / 1e6:.1f} MB in {round_.torch_seconds:.2f} s"
        )
    return rounds, losses


def _minilm(config: TrackingConfig) -> tuple[Any, Any]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    from transformers import AutoModel

    hf_logging: Any = importlib.import_module("transformers.utils.logging")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.manual_seed(config.seed)
    model = AutoModel.from_pretrained(minilm_folder())
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    return model, optimizer


def _train_step(
    model: Any, optimizer: Any, vocab: int, generator: Any, config: TrackingConfig
) -> float:
    """One AdamW step pulling mean-pooled embeddings of random tokens towards random targets."""
    import torch

    shape = (config.batch_size, config.sequence_length)
    tokens = torch.randint(1000, vocab, shape, generator=generator)
    hidden = model(input_ids=tokens, attention_mask=torch.ones_like(tokens)).last_hidden_state
    pooled = torch.nn.functional.normalize(hidden.mean(dim=1), dim=-1)
    target = torch.nn.functional.normalize(torch.randn(pooled.shape, generator=generator), dim=-1)
    loss: Any = torch.nn.functional.mse_loss(pooled, target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.item())


def _folder_bytes(root: Path) -> int:
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:  # a temporary file renamed away meanwhile
                continue
    return total


# -- 4. training-loop overhead ------------------------------------------------------------


def _overhead(config: TrackingConfig, log: Log) -> tuple[dict[str, float], str]:
    """``benchmarks.training_overhead.measure_callback_overhead`` if present, else our own.

    Only the keyword arguments it takes are passed (its signature is its owner's).
    """
    try:
        module = importlib.import_module("benchmarks.training_overhead")
        measure = module.measure_callback_overhead
    except (ImportError, AttributeError):
        return _plain_loop_overhead(config, log), "benchmarks.tracking._plain_loop_overhead"
    offered: dict[str, Any] = {"quick": config.quick, "workdir": config.workdir / "overhead"}
    if config.quick:  # a smoke test: a small model, the plain loop only, one round
        offered |= {
            "steps_per_epoch": 10,
            "epochs": 1,
            "repeats": 1,
            "width": 64,
            "kinds": ("plain",),
        }
    accepted = inspect.signature(measure).parameters
    kwargs = {name: value for name, value in offered.items() if name in accepted}
    if "workdir" in kwargs:
        kwargs["workdir"].mkdir(parents=True, exist_ok=True)
    result = measure(**kwargs)
    return {key: float(value) for key, value in result.items()}, (
        "benchmarks.training_overhead.measure_callback_overhead"
    )


def _plain_loop_overhead(config: TrackingConfig, log: Log) -> dict[str, float]:
    """% by which ``Training`` (a step log per batch, a checkpoint per epoch) slows a loop.

    The same MLP trains ``epochs`` epochs on the same synthetic data with and
    without the callbacks, the two interleaved for several rounds; the
    fastest of each is compared (the medians are in the details too).
    """
    import torch

    import weightbase
    from weightbase.training import Training

    torch.set_num_threads(1)  # steadier timings on a shared machine
    samples, features, classes = (2_048, 64, 10) if config.quick else (16_384, 256, 10)
    hidden, batch, epochs = (64, 64, 1) if config.quick else (512, 64, 2)
    rounds = 1 if config.quick else 5
    generator = torch.Generator().manual_seed(config.seed)
    x = torch.randn(samples, features, generator=generator)
    y = torch.randint(0, classes, (samples,), generator=generator)

    def fresh() -> tuple[Any, Any]:
        torch.manual_seed(config.seed)
        model = torch.nn.Sequential(
            torch.nn.Linear(features, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, classes),
        )
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_epoch(model: Any, optimizer: Any, on_step: Callable[[Any], object]) -> None:
        for first in range(0, samples, batch):
            loss: Any = torch.nn.functional.cross_entropy(
                model(x[first : first + batch]), y[first : first + batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            on_step(loss.detach())

    def plain() -> float:
        model, optimizer = fresh()
        started = time.perf_counter()
        for _ in range(epochs):
            train_epoch(model, optimizer, lambda _: None)
        return time.perf_counter() - started

    def tracked(index: int) -> float:
        model, optimizer = fresh()
        with weightbase.open(config.workdir / f"overhead-{index}") as wb:
            started = time.perf_counter()
            with Training(wb, "overhead", model=model, optimizer=optimizer) as training:
                for _ in training.epochs(epochs):
                    train_epoch(model, optimizer, lambda loss: training.step({"loss": loss}))
                    training.end_epoch({"val_loss": 0.0})
            return time.perf_counter() - started

    plain()  # warm-up: first-call costs of torch are not the callbacks'
    plain_times: list[float] = []
    tracked_times: list[float] = []
    for index in range(rounds):
        # alternate which goes first; on a shared machine a busy spell then hits both
        if index % 2:
            tracked_times.append(tracked(index))
            plain_times.append(plain())
        else:
            plain_times.append(plain())
            tracked_times.append(tracked(index))
        log(
            f"  round {index + 1}/{rounds}: {plain_times[-1]:.2f} s plain, "
            f"{tracked_times[-1]:.2f} s tracked"
        )
    torch.set_num_threads(os.cpu_count() or 1)
    # the fastest run of each is the one least disturbed by other work on the machine
    fastest_plain, fastest_tracked = min(plain_times), min(tracked_times)
    return {
        "callback_overhead_pct": (fastest_tracked - fastest_plain) / fastest_plain * 100,
        "median_overhead_pct": (
            (statistics.median(tracked_times) - statistics.median(plain_times))
            / statistics.median(plain_times)
            * 100
        ),
        "plain_min_s": fastest_plain,
        "tracked_min_s": fastest_tracked,
    }
