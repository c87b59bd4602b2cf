"""Command line: ``python -m benchmarks {store,registry,tracking,server,serving,monitoring} …``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import DOCS_PATH

_SHM = Path("/dev/shm")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of weightbase against safetensors, torch.save and ZipNN.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store = commands.add_parser(
        "store",
        help="tensor store: write, re-write, read, compression, fine-tune deltas, dedup",
        description=(
            "Measure the tensor store against its anchors (a few minutes), print one "
            "markdown table and record it in docs/benchmarks.md."
        ),
    )
    _common_options(
        store,
        json_help="print the headline ratios (and a 'details' object) as JSON instead of the table",
        quick_help="small workloads, one repetition",
        workdir_help="make the temporary folder for every file under this folder (default: "
        "the system temporary folder); it is on this disk that writes are measured",
    )
    store.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs of each timed step (default 5, or 1 with --quick); medians are reported",
    )
    registry = commands.add_parser(
        "registry",
        help="model registry: list/filter/get/history/lineage on 10,000 models, and diff",
        description=(
            "Generate a catalog of 10,000 models and 100,000 versions on SQLite and "
            "PostgreSQL, time the wb.models reads (p50, p99) and a diff of two MiniLM "
            "versions against safetensors, print one markdown table and record it in "
            "docs/benchmarks.md (a few minutes)."
        ),
    )
    _common_options(
        registry,
        json_help="print the p50/p99 of every call and the diff speedup (and a 'details' "
        "object) as JSON instead of the table",
        quick_help="500 models, 50 calls of each",
        workdir_help="make the temporary folder (SQLite catalog, stores) under this folder "
        "(default: the system temporary folder)",
    )
    registry.add_argument(
        "--models",
        type=int,
        default=None,
        help="models in the generated catalog, 10 versions each (default 10,000; 500 with --quick)",
    )
    registry.add_argument(
        "--samples",
        type=int,
        default=None,
        help="timed calls of each operation per database (default 300; 50 with --quick)",
    )
    registry.add_argument(
        "--postgres-url",
        default=None,
        help="the PostgreSQL server to measure, as postgresql+psycopg://user@host:port/db; "
        "a fresh database is created on it and dropped afterwards (default "
        "$WEIGHTBASE_BENCH_POSTGRES_URL, else postgres@127.0.0.1:5432/test)",
    )
    registry.add_argument(
        "--no-postgres",
        action="store_true",
        help="measure SQLite only (the postgres keys are null)",
    )
    tracking = commands.add_parser(
        "tracking",
        help="run tracking against MLflow (logging, history reads), checkpoints against "
        "torch.save, training-loop overhead",
        description=(
            "Measure run logging and history reads against MLflow on SQLite, MiniLM "
            "fine-tune checkpoints against torch.save and the overhead of the Training "
            "callbacks (a few minutes), print one markdown table and record it in "
            "docs/benchmarks.md."
        ),
    )
    _common_options(
        tracking,
        json_help="print the headline ratios (and a 'details' object) as JSON instead of the table",
        quick_help="small workloads, 1-2 MiniLM training steps",
        workdir_help="make the temporary folder (catalogs, stores, checkpoint files) under "
        "this folder (default: the system temporary folder)",
    )
    server = commands.add_parser(
        "server",
        help="REST server against embedded calls and mlflow server: API overhead, remote "
        "logging and pushes, 200 concurrent clients, schemathesis",
        description=(
            "Start weightbase server and mlflow server on loopback (SQLite each), measure the "
            "API overhead, remote logging and pushes against them, 200 clients at once and "
            "a schemathesis run (several minutes), print one markdown table and record it in "
            "docs/benchmarks.md."
        ),
    )
    _common_options(
        server,
        json_help="print the headline figures with their ranges over rounds (and a 'details' "
        "object) as JSON instead of the table",
        quick_help="tiny workloads, 20 clients for 2 s, 2 rounds",
        workdir_help="make the temporary folder (both servers' homes and SQLite files) under "
        "this folder (default: the system temporary folder)",
    )
    server.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="shrink the full run's durations and point counts by this factor (0 < SCALE <= 1), "
        "as a short trial of it; a scaled run never writes the docs",
    )
    server.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds of each timed comparison (default 3, or 2 with --quick); ranges are "
        "over rounds",
    )
    serving = commands.add_parser(
        "serving",
        help="inference server against direct calls, mlflow models serve and "
        "sentence-transformers: overhead, throughput, batching, embeddings/s, cache",
        description=(
            "Start weightbase serve (and mlflow models serve) on loopback, measure request "
            "overhead, MLP throughput against MLflow's scoring server, dynamic batching, "
            "MiniLM embeddings/s against sentence-transformers, the response cache, Ray Serve "
            "and prompt-prefix reuse (a few minutes), print one markdown table and record "
            "it in docs/benchmarks.md."
        ),
    )
    _common_options(
        serving,
        json_help="print every row's figure with its range over rounds (and a 'details' "
        "object) as JSON instead of the table",
        quick_help="short loads and few samples, 2 rounds",
        workdir_help="make the temporary folder (the served workspace, the MLflow model, "
        "server logs) under this folder (default: the system temporary folder)",
    )
    serving.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds of each timed comparison (default 3, or 2 with --quick); ranges are "
        "over rounds",
    )
    monitoring = commands.add_parser(
        "monitoring",
        help="production monitoring: drift against Evidently, A/B assignments and results, "
        "monitoring overhead, cascades",
        description=(
            "Measure drift_report against Evidently's DataDriftPreset (1,000,000 rows x 50 "
            "features), sticky A/B assignments per second, wb.abtests.results after 10 million "
            "outcomes, and the monitoring-overhead and cascade rows (several minutes), print "
            "one markdown table and record it in docs/benchmarks.md."
        ),
    )
    _common_options(
        monitoring,
        json_help="print every row's figure with its range over rounds (and a 'details' "
        "object) as JSON instead of the table",
        quick_help="100,000 rows for drift, 200,000 outcomes, 2 rounds",
        workdir_help="make the temporary folder (the A/B test's workspace) under this folder "
        "(default: the system temporary folder)",
    )
    monitoring.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds of each timed comparison (default 2); ranges are over rounds",
    )
    args = parser.parse_args(argv)
    if args.command == "monitoring":
        if args.rounds is not None and args.rounds < 1:
            parser.error("--rounds must be at least 1")
        return _monitoring(args)
    if args.command == "serving":
        if args.rounds is not None and args.rounds < 1:
            parser.error("--rounds must be at least 1")
        return _serving(args)
    if args.command == "server":
        if not 0 < args.scale <= 1:
            parser.error("--scale must be in (0, 1]")
        if args.rounds is not None and args.rounds < 1:
            parser.error("--rounds must be at least 1")
        return _server(args)
    if args.command == "tracking":
        return _tracking(args)
    if args.command == "registry":
        for option in ("models", "samples"):
            if getattr(args, option) is not None and getattr(args, option) < 1:
                parser.error(f"--{option} must be at least 1")
        return _registry(args)
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return _store(args)


def _common_options(
    command: argparse.ArgumentParser, *, json_help: str, quick_help: str, workdir_help: str
) -> None:
    """The options every benchmark takes: --json, --quick, --no-write-docs, --workdir, --docs."""
    command.add_argument("--json", action="store_true", help=json_help)
    command.add_argument(
        "--quick",
        action="store_true",
        help=f"{quick_help}: a smoke test whose numbers are not the reported ones (never "
        "writes the docs)",
    )
    command.add_argument(
        "--no-write-docs", action="store_true", help="leave docs/benchmarks.md untouched"
    )
    command.add_argument("--workdir", type=Path, default=None, help=workdir_help)
    command.add_argument(
        "--docs", type=Path, default=DOCS_PATH, help=f"the file to update (default {DOCS_PATH})"
    )


def _store(args: argparse.Namespace) -> int:
    # imported here so that --help answers without loading torch
    from benchmarks.report import render_store
    from benchmarks.store import StoreConfig, run_store

    log = _logger()

    workdir = Path(tempfile.mkdtemp(prefix="wb-bench-", dir=args.workdir))
    # codec throughput is measured in memory where there is a tmpfs, so disk speed
    # does not hide it; otherwise on the work disk, and the report says so
    scratch = (
        Path(tempfile.mkdtemp(prefix="wb-bench-", dir=_SHM))
        if _SHM.is_dir() and shutil.disk_usage(_SHM).free > 2 << 30
        else workdir
    )
    try:
        config = StoreConfig.create(
            workdir=workdir, scratch=scratch, quick=args.quick, repeats=args.repeats
        )
        results = run_store(config, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return _report(args, "store", results, render_store, log)


def _registry(args: argparse.Namespace) -> int:
    from benchmarks.registry import (
        DEFAULT_POSTGRES_URL,
        POSTGRES_URL_VARIABLE,
        RegistryConfig,
        run_registry,
    )
    from benchmarks.report import render_registry

    log = _logger()

    postgres_url = None
    if not args.no_postgres:
        postgres_url = (
            args.postgres_url or os.environ.get(POSTGRES_URL_VARIABLE) or DEFAULT_POSTGRES_URL
        )
    workdir = Path(tempfile.mkdtemp(prefix="wb-bench-", dir=args.workdir))
    try:
        config = RegistryConfig.create(
            workdir=workdir,
            quick=args.quick,
            models=args.models,
            samples=args.samples,
            postgres_url=postgres_url,
        )
        results = run_registry(config, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(args, "registry", results, render_registry, log)


def _tracking(args: argparse.Namespace) -> int:
    from benchmarks.report import render_tracking
    from benchmarks.tracking import TrackingConfig, run_tracking

    log = _logger()

    workdir = Path(tempfile.mkdtemp(prefix="wb-bench-", dir=args.workdir))
    try:
        config = TrackingConfig.create(workdir=workdir, quick=args.quick)
        results = run_tracking(config, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(args, "tracking", results, render_tracking, log)


def _server(args: argparse.Namespace) -> int:
    from benchmarks.server import ServerConfig, run_server
    from benchmarks.server_report import render_server

    log = _logger()

    workdir = Path(tempfile.mkdtemp(prefix="wb-bench-", dir=args.workdir))
    try:
        config = ServerConfig.create(
            workdir=workdir, quick=args.quick, scale=args.scale, rounds=args.rounds
        )
        results = run_server(config, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.scale < 1 and not args.no_write_docs:
        log("--scale below 1: docs not written (a scaled-down run is not the reported one)")
        args.no_write_docs = True
    return _report(args, "server", results, render_server, log)


def _serving(args: argparse.Namespace) -> int:
    from benchmarks.serving import ServingConfig, run_serving
    from benchmarks.serving_report import render_serving

    log = _logger()

    workdir = Path(tempfile.mkdtemp(prefix="wb-bench-", dir=args.workdir))
    try:
        config = ServingConfig.create(workdir=workdir, quick=args.quick, rounds=args.rounds)
        results = run_serving(config, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(args, "serving", results, render_serving, log)


def _monitoring(args: argparse.Namespace) -> int:
    from benchmarks.monitoring import MonitoringConfig, run_monitoring
    from benchmarks.monitoring_report import render_monitoring

    log = _logger()

    workdir = Path(tempfile.mkdtemp(prefix="wb-bench-", dir=args.workdir))
    try:
        config = MonitoringConfig.create(workdir=workdir, quick=args.quick, rounds=args.rounds)
        results = run_monitoring(config, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(args, "monitoring", results, render_monitoring, log)


def _logger() -> Callable[[str], None]:
    """A progress logger to stderr, stamped with seconds since it was made."""
    started = time.perf_counter()

    def log(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    return log


def _report(
    args: argparse.Namespace,
    name: str,
    results: Any,
    render: Callable[[Any, Any], str],
    log: Callable[[str], None],
) -> int:
    """Print a benchmark's table (or JSON) and write its section of the docs unless quick."""
    from benchmarks.machine import describe_machine
    from benchmarks.report import write_section

    machine = describe_machine()
    section = render(results, machine)
    if args.json:
        details = {"machine": machine.to_dict(), **results.details()}
        print(json.dumps({**results.summary(), "details": details}, indent=2))
    else:
        print(section)
    if args.quick:
        log("--quick: docs not written (quick numbers are not the reported ones)")
    elif not args.no_write_docs:
        write_section(args.docs, name, section)
        log(f"wrote the {name} section of {args.docs}")
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
