"""Pushes to ``weightbase server`` for ``python -m benchmarks server``: bytes sent, and time.

``push_bytes``: the request body bytes of pushing a version that shares 90% of
its chunks with one already on the server, against its raw size.
``push_minilm``: the all-MiniLM-L6-v2 folder pushed to a fresh weightbase
server (``wb.models.push``) and to ``mlflow server`` (``log_artifacts``).
"""

from __future__ import annotations

import gc
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.server_processes import settle, weightbase_server
from benchmarks.server_results import Rounds
from weightbase.samples import minilm_folder

if TYPE_CHECKING:
    from benchmarks.server_processes import ServerProcess, Tokens
    from benchmarks.server_results import ServerConfig
    from weightbase.remote import RemoteWorkspace
    from weightbase.remote.transfer import Transfer

__all__ = [
    "MINILM_MODEL",
    "SHARED_FRACTION",
    "last_transfer",
    "open_remote",
    "push_bytes",
    "push_minilm",
]

Log = Callable[[str], None]

MINILM_MODEL = "all-minilm-l6-v2"
#: The share of a pushed version's chunks the server already holds in the bytes test.
SHARED_FRACTION = 0.9


# -- bytes sent -------------------------------------------------------------------------


class _BodyCounter:
    """Counts the body bytes of every request a remote workspace's connection sends."""

    def __init__(self, connection: Any) -> None:
        self.bytes = 0
        self.requests = 0
        self._lock = threading.Lock()
        send = connection.request

        def counted(*args: Any, **kwargs: Any) -> Any:
            response = send(*args, **kwargs)
            with self._lock:
                self.bytes += len(response.request.content)
                self.requests += 1
            return response

        # an instance attribute shadows the method; the pushes upload from worker threads
        connection.request = counted


def push_bytes(
    config: ServerConfig, server: ServerProcess, tokens: Tokens, log: Log
) -> tuple[Rounds, dict[str, Any]]:
    count, elements = config.dedup_tensors, config.dedup_tensor_elements
    changed = max(1, round(count * (1 - SHARED_FRACTION)))
    shape = (elements // 1024, 1024)
    fractions: list[float] = []
    rounds: list[dict[str, Any]] = []
    for round_index in range(config.rounds):
        rng = np.random.default_rng(config.seed + 100 + round_index)
        base = {
            f"layers.{index:02d}.weight": rng.standard_normal(shape, dtype=np.float32)
            for index in range(count)
        }
        variant = dict(base)
        for index in sorted(rng.choice(count, size=changed, replace=False).tolist()):
            variant[f"layers.{index:02d}.weight"] = rng.standard_normal(shape, dtype=np.float32)
        raw = sum(array.nbytes for array in variant.values())
        name = f"bench-dedup-{round_index}"
        with open_remote(server.url, tokens.editor) as wb:
            wb.models.push(name, base)
            counter = _BodyCounter(wb.connection)
            wb.models.push(name, variant)
            transfer = last_transfer(wb)
        fractions.append(counter.bytes / raw)
        chunks = transfer.present_chunks + transfer.sent_chunks
        rounds.append(
            {
                "raw_bytes": raw,
                "request_body_bytes": counter.bytes,
                "requests": counter.requests,
                "transfer_sent_bytes": transfer.sent_bytes,
                "transfer_manifest_bytes": transfer.manifest_bytes,
                "transfer_total_bytes": transfer.total_bytes,
                "transfer_fraction": transfer.total_bytes / raw,
                "chunks": chunks,
                "chunks_sent": transfer.sent_chunks,
                "chunks_present": transfer.present_chunks,
                "shared_chunk_fraction": transfer.present_chunks / chunks,
            }
        )
        log(
            f"  round {round_index + 1}/{config.rounds}: {counter.bytes / 1e6:.2f} MB of request "
            f"bodies for {raw / 1e6:.1f} MB raw ({transfer.sent_chunks} of {chunks} chunks sent)"
        )
    return Rounds(tuple(fractions)), {
        "tensors": count,
        "tensor_shape": list(shape),
        "tensors_changed": changed,
        "rounds_detail": rounds,
    }


# -- MiniLM push time ------------------------------------------------------------------------


def push_minilm(
    config: ServerConfig, anchor: ServerProcess, log: Log
) -> tuple[Rounds, dict[str, Any]]:
    from mlflow.tracking import MlflowClient

    folder = minilm_folder()
    files = [path for path in sorted(folder.rglob("*")) if path.is_file()]
    folder_bytes = sum(path.stat().st_size for path in files)
    for path in files:  # both sides then read the folder from the page cache
        path.read_bytes()
    mlflow_client = MlflowClient(tracking_uri=anchor.url)
    experiment_id = str(mlflow_client.create_experiment("bench-push"))
    warmup_run = mlflow_client.create_run(experiment_id).info.run_id
    mlflow_client.log_artifact(warmup_run, str(folder / "config.json"))  # untimed first upload
    mlflow_client.set_terminated(warmup_run)
    times: dict[str, list[float]] = {"weightbase": [], "mlflow": []}
    encoding: list[float] = []
    sent: list[int] = []
    for round_index in range(config.rounds):
        sides = ["weightbase", "mlflow"] if round_index % 2 == 0 else ["mlflow", "weightbase"]
        for side in sides:
            if side == "mlflow":
                run_id = mlflow_client.create_run(experiment_id).info.run_id
                gc.collect()
                started = time.perf_counter()
                mlflow_client.log_artifacts(run_id, str(folder), artifact_path="model")
                times["mlflow"].append(time.perf_counter() - started)
                mlflow_client.set_terminated(run_id)
                stored = config.workdir / "mlflow" / "artifacts" / experiment_id / run_id
                assert _folder_bytes(stored) == folder_bytes, "MLflow stored another size"
                continue
            # a fresh server each round, so that the push finds none of its chunks there
            home = config.workdir / f"push-{round_index}"
            with (
                weightbase_server(home, log) as (server, tokens),
                open_remote(server.url, tokens.editor) as wb,
            ):
                settle([server, anchor], log)
                # untimed: the server's first push pays for imports; this one shares no chunk
                wb.models.push("bench-warmup", _warmup_weights(config.seed + round_index))
                # the progress callback runs as the folder is encoded (chunks upload meanwhile),
                # so its last call is about when encoding ended and the upload began
                encoded: list[float] = []
                gc.collect()
                started = time.perf_counter()
                wb.models.push(MINILM_MODEL, folder, progress=_stamp_into(encoded))
                times["weightbase"].append(time.perf_counter() - started)
                encoding.append(max(encoded, default=started) - started)
                sent.append(last_transfer(wb).total_bytes)
            shutil.rmtree(home, ignore_errors=True)
        log(
            f"  round {round_index + 1}/{config.rounds}: weightbase "
            f"{times['weightbase'][-1]:.2f} s, MLflow {times['mlflow'][-1]:.2f} s"
        )
    speedup = Rounds(
        tuple(m / w for w, m in zip(times["weightbase"], times["mlflow"], strict=True))
    )
    return speedup, {
        "folder": str(folder),
        "files": len(files),
        "folder_bytes": folder_bytes,
        "seconds": times,
        "weightbase_encoding_seconds": encoding,
        "weightbase_sent_bytes": sent,
    }


def open_remote(url: str, token: str) -> RemoteWorkspace:
    """``weightbase.open(url, token=token)``, typed as the remote workspace it is."""
    import weightbase
    from weightbase.remote import RemoteWorkspace

    opened = weightbase.open(url, token=token)
    assert isinstance(opened, RemoteWorkspace)
    return opened


def last_transfer(wb: RemoteWorkspace) -> Transfer:
    """``wb.models.last_transfer``: what the remote workspace's last push sent."""
    from weightbase.remote.models import RemoteModels

    models = wb.models
    assert isinstance(models, RemoteModels)
    assert models.last_transfer is not None
    return models.last_transfer


def _stamp_into(stamps: list[float]) -> Callable[[int], None]:
    """A progress callback that notes when it was called."""

    def stamp(_: int) -> None:
        stamps.append(time.perf_counter())

    return stamp


def _warmup_weights(seed: int) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    return {"warmup.weight": rng.standard_normal((256, 256), dtype=np.float32)}


def _folder_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
