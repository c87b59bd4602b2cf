"""Markdown for ``python -m benchmarks serving``: the serving section of docs/benchmarks.md."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from benchmarks.serving_models import GPT2_LAYERS, GPT2_WIDTH
from benchmarks.serving_results import TARGETS, Figure

if TYPE_CHECKING:
    from benchmarks.machine import Machine
    from benchmarks.serving_results import ServingResults

__all__ = ["render_serving"]

# written as escapes: ruff flags the literal signs
_X = "\N{MULTIPLICATION SIGN}"
_TO = "\N{EN DASH}"


def _target(key: str, figure: Figure, unit: str) -> str:
    if key not in TARGETS:
        return "reported"
    bound, kind = TARGETS[key]
    sign = "≤" if kind == "max" else "≥"
    if not figure.ran:
        return f"{sign} {bound:g}{unit} (not run)"
    if figure.meets(key):
        return f"{sign} {bound:g}{unit} (met by every round)"
    return (
        f"{sign} {bound:g}{unit} (**missed**: {figure.cleared(key)} of {len(figure.values)}"
        " rounds clear it)"
    )


def _spread(figure: Figure, fmt: str, unit: str = "") -> str:
    """The median, then the range over rounds: ``1.23x (1.10-1.40x over 3 rounds)``."""
    if not figure.ran:
        return str(figure.not_run)
    return (
        f"{figure.median:{fmt}}{unit} ({figure.low:{fmt}}{_TO}{figure.high:{fmt}}{unit} over "
        f"{len(figure.values)} rounds)"
    )


def _median(values: Any, fmt: str) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):{fmt}}"


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render_serving(results: ServingResults, machine: Machine) -> str:
    """The section for ``python -m benchmarks serving``: header, one table, footnotes."""
    config, detail = results.config, results.detail

    def get(key: str, *path: str) -> Any:
        found: Any = detail.get(key, {})
        for part in path:
            found = found.get(part, {}) if isinstance(found, dict) else {}
        return found

    def figure(key: str) -> Figure:
        return results.figure(key)

    overhead_p50 = get("overhead_p50_ms", "p50_ms")
    ray_p50 = get("ray_serve_overhead_p50_ms", "p50_ms")
    rates = get("throughput_speedup_vs_mlflow_serve", "requests_per_s")
    cpu_ms = get("throughput_speedup_vs_mlflow_serve", "server_cpu_ms_per_request")
    client_ms = get("throughput_speedup_vs_mlflow_serve", "client_cpu_ms_per_request")
    batched_vs_mlflow = get("throughput_speedup_vs_mlflow_serve", "batched_speedup_vs_mlflow_serve")
    batching = get("batching_speedup", "sentences_per_s")
    mean_batch = get("batching_speedup", "mean_batch_size", "on")
    texts = get("embeddings_per_s", "texts_per_s")
    cache = get("cache_hit_latency_ratio", "p50_ms")
    kv = get("kv_prefix_speedup", "p50_ms")
    rows: list[tuple[str, ...]] = [
        (
            f"1. One OIP `POST /v2/models/mlp/infer` (one FP32 row of 64, a 3-layer MLP): p50 of"
            f" {config.latency_samples} requests a round, interleaved with the anchor",
            f"`weightbase serve --batch-size 1`: {_median(overhead_p50.get('weightbase'), '.3f')}"
            " ms",
            f"the same forward pass in-process: {_median(overhead_p50.get('direct'), '.3f')} ms",
            "+" + _spread(figure("overhead_p50_ms"), ".2f", " ms"),
            _target("overhead_p50_ms", figure("overhead_p50_ms"), " ms"),
            "`overhead_p50_ms`",
        ),
        (
            f"2. MLP throughput: {config.throughput_clients} concurrent clients, one row a"
            f" request, {config.throughput_seconds:g} s a side and round; the clients (one"
            " uvloop process, bodies encoded once) took"
            f" {_median(client_ms.get('weightbase'), '.2f')} CPU ms a weightbase request,"
            f" {_median(client_ms.get('mlflow'), '.2f')} an MLflow one",
            f"`weightbase serve --batch-size 1 --cache-size 0`, OIP:"
            f" {_median(rates.get('weightbase'), ',.0f')} requests/s"
            f" ({_median(cpu_ms.get('weightbase'), '.2f')} server CPU ms a request)",
            f'`mlflow models serve` (pytorch flavor, `/invocations`, `{{"inputs": [[…]]}}`):'
            f" {_median(rates.get('mlflow'), ',.0f')} requests/s"
            f" ({_median(cpu_ms.get('mlflow'), '.2f')} server CPU ms a request)",
            _spread(figure("throughput_speedup_vs_mlflow_serve"), ".2f", _X),
            _target(
                "throughput_speedup_vs_mlflow_serve",
                figure("throughput_speedup_vs_mlflow_serve"),
                _X,
            ),
            "`throughput_speedup_vs_mlflow_serve`",
        ),
        (
            "",
            f"with dynamic batching (`--batch-size {config.batch_size} --max-wait-ms"
            f" {config.max_wait_ms:g}`): {_median(rates.get('weightbase_batched'), ',.0f')}"
            " requests/s",
            "",
            f"{_median(batched_vs_mlflow, '.2f')}{_X}"
            + (
                f" ({min(batched_vs_mlflow):.2f}{_TO}{max(batched_vs_mlflow):.2f}{_X})"
                if batched_vs_mlflow
                else ""
            ),
            "",
            "",
        ),
        (
            f"3. all-MiniLM-L6-v2, {config.batching_clients} concurrent clients each sending one"
            f" distinct sentence to `/v1/embeddings`, {config.batching_seconds:g} s a side and"
            " round",
            f"batching on (`--batch-size {config.batch_size} --max-wait-ms"
            f" {config.max_wait_ms:g}`): {_median(batching.get('on'), ',.0f')} sentences/s"
            f" (mean batch {_median(mean_batch, '.1f')})",
            f"batching off (`--batch-size 1`): {_median(batching.get('off'), ',.0f')} sentences/s",
            _spread(figure("batching_speedup"), ".2f", _X),
            _target("batching_speedup", figure("batching_speedup"), _X),
            "`batching_speedup`",
        ),
        (
            f"4. Embed {config.embedding_texts:,} distinct sentences a round with"
            f" all-MiniLM-L6-v2, {config.texts_per_request} a request from"
            f" {config.embedding_clients} clients",
            f"`/v1/embeddings` end to end (base64): {_spread(figure('embeddings_per_s'), ',.0f')}"
            " texts/s",
            "sentence-transformers `SentenceTransformer(folder).encode(texts, batch_size="
            f"{config.texts_per_request})` in-process:"
            f" {_median(texts.get('sentence_transformers'), ',.0f')} texts/s",
            _spread(figure("embeddings_vs_sentence_transformers"), ".2f", _X),
            _target(
                "embeddings_vs_sentence_transformers",
                figure("embeddings_vs_sentence_transformers"),
                _X,
            ),
            "`embeddings_per_s`, `embeddings_vs_sentence_transformers`",
        ),
        (
            f"5. Response cache, MiniLM on `/v1/embeddings`: p50 of {config.latency_samples}"
            " repeats of a request just answered (hits) ÷ p50 of as many new ones (misses),"
            " alternating, one at a time over one kept-alive connection of the lean client",
            f"hit: {_median(cache.get('hit'), '.2f')} ms",
            f"miss: {_median(cache.get('miss'), '.2f')} ms",
            _spread(figure("cache_hit_latency_ratio"), ".3f"),
            _target("cache_hit_latency_ratio", figure("cache_hit_latency_ratio"), ""),
            "`cache_hit_latency_ratio`",
        ),
        (
            "6. The request of row 1 through `weightbase serve --engine ray` (Ray Serve)",
            f"{_median(ray_p50.get('ray'), '.3f')} ms" if ray_p50 else "",
            f"the same forward pass in-process: {_median(ray_p50.get('direct'), '.3f')} ms"
            if ray_p50
            else "",
            ("+" if figure("ray_serve_overhead_p50_ms").ran else "")
            + _spread(figure("ray_serve_overhead_p50_ms"), ".2f", " ms"),
            "reported",
            "`ray_serve_overhead_p50_ms`",
        ),
        (
            f"7. A small GPT-2 ({GPT2_LAYERS} layers, {GPT2_WIDTH} wide, random weights) on"
            f" `/v1/completions`: a {config.prompt_words}"
            f"-word system prompt shared by every request, a distinct 3-word ending each,"
            f" {config.completion_tokens} tokens greedy; p50 of {config.prompt_samples} a"
            " round",
            f"KV-prefix reuse on: {_median(kv.get('reuse'), '.1f')} ms; hit rate"
            f" {_spread(figure('kv_prefix_hit_rate'), '.2f')}"
            if kv
            else "",
            f"`--kv-prefix-cache 0`: {_median(kv.get('no_reuse'), '.1f')} ms" if kv else "",
            _spread(figure("kv_prefix_speedup"), ".2f", _X),
            "reported",
            "`kv_prefix_hit_rate`, `kv_prefix_speedup`",
        ),
    ]
    device = results.gpu_device
    for key, label, unit, fmt in (
        ("overhead_p50_ms", "row 1's overhead", " ms", ".2f"),
        ("batching_speedup", "row 3's batching speedup", _X, ".2f"),
        ("embeddings_per_s", "row 4's texts/s", "", ",.0f"),
        ("embeddings_vs_sentence_transformers", "row 4's ratio to sentence-transformers", _X,
         ".2f"),
        ("cache_hit_latency_ratio", "row 5's cache ratio", "", ".3f"),
    ):  # fmt: skip
        gpu = figure(f"gpu_{key}")
        rows.append(
            (
                f"GPU: {label}, every server `--device cuda`" + (f" on {device}" if device else ""),
                "",
                "",
                _spread(gpu, fmt, unit),
                _target(key, gpu, unit) if key in TARGETS else "reported",
                f"`gpu_{key}`",
            )
        )
    header = ("Measurement", "weightbase", "Anchor", "weightbase vs anchor", "Target", "JSON key")
    table = [_row(header), _row(tuple("---" for _ in header))]
    table.extend(_row(cells) for cells in rows)
    note = (
        "\n\n**Quick run (`--quick`): tiny workloads; not the reported numbers.**"
        if config.quick
        else ""
    )
    versions = results.versions
    threads = results.extra.get("threads", "?")
    return "\n".join(
        [
            "## Inference server (`python -m benchmarks serving`)",
            "",
            machine.summary()
            + f" MLflow {versions.get('mlflow', '?')}, sentence-transformers"
            + f" {versions.get('sentence-transformers', '?')}, Ray"
            + f" {versions.get('ray', '?')}. Every server is a subprocess on 127.0.0.1 started"
            + " by the benchmark on a free port (the repository root on its `PYTHONPATH`, so"
            + " that it imports the MLP's entry point from `benchmarks/serving_models.py`), one"
            + " process each (Ray's with its cluster's), all with"
            + f" `OMP_NUM_THREADS={threads}`, the torch threads of the"
            + " in-process anchors; access logs off (MLflow's uvicorn through `UVICORN_ACCESS_LOG`"
            + " and `UVICORN_LOG_LEVEL=warning`). Clients run in the benchmark process, on"
            + f" the same {machine.cores} cores as the servers: the timed single requests"
            + " (rows 1, 5, 6, 7) through an httpx client with a kept-alive connection, the"
            + " concurrent loads (rows 2, 3, 4) as asyncio tasks each with a kept-alive"
            + " HTTP/1.1 connection of a minimal client (a request written, its answer read by"
            + " its length: a fraction of httpx's CPU per request, which would otherwise take"
            + " the servers' cores). The response cache is off"
            + " (`--cache-size 0`) everywhere but row 5. The machine is shared, so timings are"
            + " noisy; every round is in the `--json` details."
            + note,
            "",
            *table,
            "",
            "Ratios are given as the median and the range over rounds; a target is met only"
            " when every round clears it. Speeds are weightbase ÷ anchor; the rounds"
            " interleave weightbase and its anchor, alternating which goes first, after untimed"
            " warm-up requests that load every model."
            " (1) The anchor is the module's forward pass on a 1-row tensor under"
            " `torch.inference_mode()`, the tensor made from the row and the answer turned"
            " into a list inside the timed call; the server's answer is checked equal to it."
            " The server runs `--batch-size 1` so that a lone request does not wait"
            " `--max-wait-ms` for company."
            " (2) Closed loop: each client sends its next request when the last is answered;"
            " requests/s counts answered requests over the side's wall time. Like with like:"
            " one uvicorn worker each, the same MLP weights (MLflow's `pytorch` flavor saved"
            " by pickle, so the same eager module), the same rows, no batching on either side"
            " for the key (MLflow's scoring server has none); the row below it is weightbase"
            " with its dynamic batching on. Server CPU ms a request: the CPU time of the"
            " server's process tree (from `/proc`) over the side's run ÷ the requests"
            " answered, a figure the other work on a shared machine disturbs less than"
            " requests/s."
            " (3) Every sentence distinct (the cache is off anyway); sentences/s over each"
            " side's wall time; the mean batch is read from the server's"
            " `weightbase_serve_batch_size` histogram."
            " (4) Both embed the same freshly made sentences of 12 words each round; the"
            " server's vectors are checked against sentence-transformers' (cosine > 0.999)."
            " Each request carries"
            f" {config.texts_per_request} texts: the server runs them in forward passes of at"
            f" most its `--batch-size` ({config.batch_size}), sentence-transformers in batches"
            f" of {config.texts_per_request}; texts/s is from the first request sent to the last"
            " answer, JSON and HTTP included."
            " (5) One client; each new sentence is sent twice in a row, so the second is a"
            " hit; the server's `weightbase_serve_cache_hits_total` must count exactly the"
            " hits sent."
            " (6) Reported, no target: `weightbase serve --engine ray --batch-size 1"
            " --cache-size 0` (one replica), started alone after the other rows, since Ray's"
            " own processes keep using CPU while it runs; not run where this weightbase has no"
            " `--engine ray`."
            " (7) Reported, no target: the hit rate is"
            " `weightbase_serve_kv_prefix_hits_total` ÷ (hits + misses) from `/metrics` over"
            " each round; the speedup is the p50 without reuse ÷ the p50 with it, both"
            " servers `--batch-size 1 --cache-size 0`, requests alternating between them."
            " GPU rows run rows 1, 3, 4 and 5 again with every server on `--device cuda`"
            " and the anchors on the same GPU.",
            "",
            "Run it with `python -m benchmarks serving` (a few minutes); `--quick`, about two, is a"
            " smoke test that never writes this file.",
        ]
    )
