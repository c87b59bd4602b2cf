"""Markdown for ``python -m benchmarks server``: the server section of docs/benchmarks.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.server_results import LOG_BATCH_POINTS, METRICS_PER_STEP, TARGETS, Rounds

if TYPE_CHECKING:
    from benchmarks.machine import Machine
    from benchmarks.server_results import ServerResults

__all__ = ["render_server"]

# written as escapes: ruff flags the literal signs
_X = "\N{MULTIPLICATION SIGN}"
_TO = "\N{EN DASH}"


def _met(met: bool) -> str:
    return "met" if met else "**missed**"


def _target(key: str, rounds: Rounds, unit: str) -> str:
    bound, kind = TARGETS[key]
    sign = "≤" if kind == "max" else "≥"
    if rounds.meets(key):
        return f"{sign} {bound:g}{unit} (met by every round)"
    cleared = sum(1 for value in rounds.values if Rounds((value,)).meets(key))
    return f"{sign} {bound:g}{unit} (**missed**: {cleared} of {len(rounds.values)} rounds clear it)"


def _spread(rounds: Rounds, fmt: str, unit: str = "") -> str:
    """The median, then the range over rounds: ``1.23x (1.10-1.40x over 3 rounds)``."""
    return (
        f"{rounds.median:{fmt}}{unit} ({rounds.low:{fmt}}{_TO}{rounds.high:{fmt}}{unit} over "
        f"{len(rounds.values)} rounds)"
    )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _logging_rows(results: ServerResults) -> list[tuple[str, ...]]:
    """Row 2: the headline client (run.log where measured, else HTTP batches), then the other."""
    detail = results.log_detail
    rates = {side: _median(values) for side, values in detail["points_per_s"].items()}
    key = "remote_log_speedup_vs_mlflow_server"
    label = (
        f"2. Log metric points from one client thread ({METRICS_PER_STEP} metrics a step):"
        f" {detail['weightbase_points_per_round']:,} points a round to weightbase,"
        f" {detail['mlflow_points_per_round']:,} to MLflow"
    )
    mlflow = (
        f"`MlflowClient.log_batch` to `mlflow server`, {LOG_BATCH_POINTS:,} points a call:"
        f" {rates['mlflow']:,.0f} points/s"
    )
    http = (
        f"`POST /api/v1/runs/{{id}}/metrics`, {LOG_BATCH_POINTS:,} points a request (JSON):"
        f" {rates['weightbase_http']:,.0f} points/s"
    )
    http_speedup = detail["http_batches_speedup"]
    if detail["headline"] == "weightbase_http":
        return [
            (
                label,
                http,
                mlflow,
                _spread(results.log_speedup, ".2f", _X),
                _target(key, results.log_speedup, _X),
                f"`{key}`",
            ),
        ]
    return [
        (
            label,
            "remote run handle `run.log`, its writer's batches, final `flush()` included:"
            f" {rates['weightbase_run_log']:,.0f} points/s",
            mlflow,
            _spread(results.log_speedup, ".2f", _X),
            _target(key, results.log_speedup, _X),
            f"`{key}`",
        ),
        (
            "",
            http,
            "",
            f"{_median(http_speedup):.2f}{_X} ({min(http_speedup):.2f}{_TO}"
            f"{max(http_speedup):.2f}{_X})",
            "",
            "",
        ),
    ]


def render_server(results: ServerResults, machine: Machine) -> str:
    """The section for ``python -m benchmarks server``: header, one table, footnotes."""
    config = results.config
    overhead, push_bytes, minilm = (
        results.overhead_detail,
        results.bytes_detail,
        results.push_detail,
    )
    concurrent, fuzz = results.concurrent, results.fuzz
    p50 = {name: _median(values) for name, values in overhead["p50_ms"].items()}
    remote_overhead = overhead["remote_overhead_p50_ms"]
    seconds = {side: _median(values) for side, values in minilm["seconds"].items()}
    bytes_rounds = push_bytes["rounds_detail"]
    body_mb = _median([entry["request_body_bytes"] / 1e6 for entry in bytes_rounds])
    raw_mb = bytes_rounds[0]["raw_bytes"] / 1e6
    shape = _X.join(str(size) for size in push_bytes["tensor_shape"])
    concurrent_met = concurrent.points_lost == 0 and concurrent.server_errors == 0
    rows: list[tuple[str, ...]] = [
        (
            f"1. GET one model version: p50 of {config.overhead_samples} calls a round, the"
            " calls interleaved",
            f"HTTP GET (httpx, keep-alive, JSON parsed): {p50['http']:.2f} ms",
            f"embedded `wb.models.version` on the server's catalog: {p50['embedded']:.2f} ms",
            "+" + _spread(results.overhead, ".2f", " ms"),
            _target("api_overhead_p50_ms", results.overhead, " ms"),
            "`api_overhead_p50_ms`",
        ),
        (
            "",
            f"remote workspace `wb.models.version` (a record decoded): {p50['remote']:.2f} ms",
            "",
            f"+{_median(remote_overhead):.2f} ms ({min(remote_overhead):.2f}{_TO}"
            f"{max(remote_overhead):.2f} ms)",
            "",
            "",
        ),
        *_logging_rows(results),
        (
            f"3. Push a version of {push_bytes['tensors']} fp32 tensors ({shape}, one chunk"
            f" each) sharing all but {push_bytes['tensors_changed']} (new random values) with"
            " a version already on the server",
            f"`wb.models.push`: {body_mb:,.2f} MB of request bodies for {raw_mb:,.1f} MB raw",
            "",
            _spread(results.bytes_fraction, ".3f") + " of the raw size",
            _target("remote_push_bytes_fraction", results.bytes_fraction, ""),
            "`remote_push_bytes_fraction`",
        ),
        (
            f"4. Push the all-MiniLM-L6-v2 folder ({minilm['files']} files,"
            f" {minilm['folder_bytes'] / 1e6:,.1f} MB) to a server that has none of it",
            f"remote `wb.models.push(name, folder)`: {seconds['weightbase']:.2f} s (about"
            f" {_median(minilm['weightbase_encoding_seconds']):.2f} s of it encoding the folder,"
            " its chunks uploading meanwhile; the rest the last uploads and the commit)",
            f"MLflow `log_artifacts` to `mlflow server --serve-artifacts`:"
            f" {seconds['mlflow']:.2f} s",
            _spread(results.push_speedup, ".2f", _X),
            _target("remote_push_speedup_vs_mlflow_artifacts", results.push_speedup, _X),
            "`remote_push_speedup_vs_mlflow_artifacts`",
        ),
        (
            f"5. {concurrent.clients} clients logging at once for {config.client_seconds:g} s,"
            f" {config.client_batch_steps * config.client_metrics} points"
            f" ({config.client_metrics} metrics {_X} {config.client_batch_steps} steps) a"
            " request, a run each; then every point sent looked for in the catalog",
            f"{concurrent.points_per_s:,.0f} points/s stored; {concurrent.points_lost:,} of"
            f" {concurrent.points_sent:,} points lost; {concurrent.server_errors} server errors;"
            f" request p50 {concurrent.latency_p50_ms:,.0f} ms, p99"
            f" {concurrent.latency_p99_ms:,.0f} ms",
            "",
            "",
            f"0 lost, 0 server errors ({_met(concurrent_met)})",
            "`concurrent_clients`",
        ),
        (
            f"6. schemathesis {fuzz.schemathesis_version} over all {fuzz.operations} operations"
            f" of `/api/v1/openapi.json`, admin token, at most {config.fuzz_examples} examples"
            f" an operation, phases {config.fuzz_phases.replace(',', ', ')}",
            f"{fuzz.server_errors} of {fuzz.responses:,} responses with status ≥ 500",
            "",
            "",
            f"0 ({_met(fuzz.server_errors == 0)})",
            "`schemathesis_server_errors`",
        ),
    ]
    header = ("Measurement", "weightbase", "Anchor", "weightbase vs anchor", "Target", "JSON key")
    table = [_row(header), _row(tuple("---" for _ in header))]
    table.extend(_row(cells) for cells in rows)
    failing = (
        " Responses with status ≥ 500 came from: "
        + "; ".join(f"`{text}`" for text in fuzz.failing[:8])
        + "."
        if fuzz.failing
        else ""
    )
    if config.quick:
        note = "\n\n**Quick run (`--quick`): tiny workloads; not the reported numbers.**"
    elif config.scale < 1:
        note = (
            f"\n\n**Scaled-down run (`--scale {config.scale:g}`): shorter durations and fewer"
            " points; not the reported numbers.**"
        )
    else:
        note = ""
    mlflow = results.versions.get("mlflow", "?")
    return "\n".join(
        [
            "## REST server (`python -m benchmarks server`)",
            "",
            machine.summary()
            + f" `weightbase server` and `mlflow server` (MLflow {mlflow}) run as subprocesses"
            + " on 127.0.0.1, started by the benchmark on free ports and stopped at its end;"
            + " one uvicorn worker process each, access logs off, each on a SQLite file on the"
            + " work disk in WAL mode with `synchronous=FULL` (weightbase's catalog settings;"
            + " MLflow's connections get them from a connect hook on its server's"
            + " `PYTHONPATH`, so both commit with the same durability). MLflow serves artifacts"
            + " (`--serve-artifacts`) into a local folder; the same hook has it fsync each"
            + " artifact before its rename and the folder after, as weightbase's server does"
            + " for each chunk, where MLflow by itself does neither. Both servers run with"
            + " uvicorn's httptools and uvloop (`uvicorn[standard]`, weightbase's `server`"
            + " extra). Clients are threads of the"
            + f" benchmark process, on the same {machine.cores} cores as the servers. The machine"
            + " is shared,"
            + " so timings are noisy; every round is in the `--json` details."
            + note,
            "",
            *table,
            "",
            "Ratios are given as the median and the range over rounds; a target is met only"
            " when every round clears it. Speeds are weightbase ÷ anchor (above 1"
            f"{_X} weightbase is faster). The rounds interleave weightbase and its anchor,"
            " alternating which goes first."
            " (1) The same version read three ways on the same catalog; the overhead is the"
            " HTTP p50 minus the embedded p50, token checked on every request."
            f" (2) Same batching for the HTTP batches: {LOG_BATCH_POINTS:,} points a request"
            " (MLflow's most per `log_batch`); one client thread each with a kept-alive"
            " connection, each point carrying its step and time, the requests built inside the"
            " timed loop on both sides; weightbase's points are read back from the catalog"
            " afterwards and must all be there. A remote `run.log`, where this weightbase has"
            " one, batches as its writer does and is timed to the end of `run.flush()`."
            " (3) Counted: the body bytes of every request the push sends (the missing-chunks"
            " query, the chunks, the manifest and the version commit); headers are not"
            " counted. The server already holds the other chunks from the version before,"
            " pushed in the same round; `wb.models.last_transfer` (chunks and manifest) is in"
            " the details. (4) A fresh weightbase server each round, so the push finds no chunk"
            " there; it hashes the folder's tensors, looks them all up in one request, encodes"
            " them and sends each chunk as it is encoded, in batches of about 8 MiB (4"
            " upload threads, the default), then commits the version; the server writes each"
            " chunk to a temporary file, fsyncs and renames it; MLflow's client uploads each"
            " file (its defaults) and its server writes it to a temporary file, fsyncs (the"
            " hook above) and renames it. Both read the"
            " folder from the page cache. (5) Server errors count responses with status ≥ 500"
            " and requests that got no answer (120 s timeout); a point is stored when its step"
            " holds exactly the value sent."
            " (6) Two passes, so that the admin token stays valid: first every operation but"
            " revoking tokens and disabling or re-roling users, then those; shrinking is off,"
            " so each failing example is counted once." + failing,
            "",
            "Run it with `python -m benchmarks server` (about ten minutes); `--quick` is a"
            " one-minute smoke test and `--scale 0.1` a short trial of the full run, neither"
            " of which writes this file.",
        ]
    )
