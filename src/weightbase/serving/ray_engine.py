"""The inference server as a Ray Serve application: ``weightbase serve --engine ray``.

Each replica opens the workspace itself and serves the same app as the local engine
(:func:`~weightbase.serving.app.create_serve_app`); Ray Serve routes, scales and places them.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from weightbase.errors import MissingExtraError, ValidationError
from weightbase.serving.records import Resources, Scaling
from weightbase.serving.server_options import ServeOptions

if TYPE_CHECKING:
    from fastapi import FastAPI

    from weightbase.serving.records import DeploymentConfig
    from weightbase.serving.runnable import Workspace

__all__ = [
    "APP_NAME",
    "deployment_options",
    "ray_deployment_options",
    "ray_server",
    "require_ray_extra",
]

#: The name of the Ray Serve application (and its one deployment) that serves the models.
APP_NAME = "weightbase"

# Kubernetes memory quantities ("512Mi", "4Gi", "1.5G", "4k"), the form Resources keeps.
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)([KMGTPE]i?|k)?\Z")
_FACTORS = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_FACTORS |= {"P": 10**15, "E": 10**18}
_FACTORS |= {f"{unit}i": 2 ** (10 * power) for power, unit in enumerate("KMGTPE", start=1)}
# What a Ray driver started here needs: no usage reporting (it would reach for the network).
_RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0"}


def require_ray_extra() -> None:
    """Import Ray Serve or raise ``MissingExtraError`` naming the ``[ray]`` extra."""
    try:
        importlib.import_module("ray.serve")
    except ImportError as exc:
        raise MissingExtraError(
            "weightbase serve --engine ray needs Ray Serve, which is not installed; "
            "pip install 'weightbase[ray]'",
            module="ray.serve",
            extra="ray",
        ) from exc


def ray_deployment_options(
    scaling: Scaling, max_concurrency: int, resources: Resources | None = None
) -> dict[str, Any]:
    """The keyword arguments of ``serve.deployment`` for these replicas and limits.

    A fixed count (``min_replicas == max_replicas``) is ``num_replicas``; a range is
    Ray Serve's autoscaling, which adds a replica when each holds more than
    ``target_cpu`` percent of ``max_concurrency`` requests (Ray Serve scales on requests
    in flight, not CPU). ``max_concurrency`` bounds each replica's requests; resources
    become the replica actor's CPUs, whole GPUs and memory in bytes (0: none reserved).
    Without ``resources`` Ray Serve's default, one CPU a replica, holds.
    """
    options: dict[str, Any] = {"max_ongoing_requests": max_concurrency}
    if scaling.min_replicas == scaling.max_replicas:
        options["num_replicas"] = scaling.max_replicas
    else:
        percent = scaling.target_cpu if scaling.target_cpu is not None else 70
        options["autoscaling_config"] = {
            "min_replicas": scaling.min_replicas,
            "max_replicas": scaling.max_replicas,
            "target_ongoing_requests": max(1.0, max_concurrency * percent / 100),
        }
    if resources is not None:
        cpu = resources.cpu
        actor: dict[str, Any] = {
            "num_cpus": float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu),
            "num_gpus": resources.gpu,
        }
        memory = memory_bytes(resources.memory)
        if memory:
            actor["memory"] = memory
        options["ray_actor_options"] = actor
    return options


def deployment_options(config: DeploymentConfig) -> dict[str, Any]:
    """:func:`ray_deployment_options` of a deployment's scaling, limit and resources."""
    return ray_deployment_options(config.scaling, config.max_concurrency, config.resources)


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (``512Mi``, ``4Gi``, ``1.5G``) as a number of bytes."""
    match = _QUANTITY.match(quantity)
    if match is None:
        raise ValidationError(
            f"{quantity!r} is not a memory quantity such as 512Mi or 4Gi", field="memory"
        )
    return int(float(match.group(1)) * _FACTORS[match.group(2) or ""])


def _replica_class() -> type:
    """The replica's class; built here because ``ray`` is imported only when used."""
    from ray import serve

    from weightbase.serving.app import create_serve_app

    class WeightbaseReplica:
        """Opens the workspace, then serves :func:`create_serve_app` over it."""

        def __init__(
            self,
            open_workspace: Callable[[], Workspace],
            refs: Sequence[str],
            options: ServeOptions,
        ) -> None:
            self._workspace = open_workspace()
            self._refs = list(refs)
            self._options = options

        def __serve_build_asgi_app__(self) -> FastAPI:
            return create_serve_app(self._workspace, self._refs, self._options)

        def __del__(self) -> None:  # Ray Serve calls it after the app's shutdown
            close = getattr(getattr(self, "_workspace", None), "close", None)
            if close is not None:
                close()

    ingress: type = serve.ingress()(WeightbaseReplica)
    return ingress


def _start_ray(num_cpus: int | None) -> bool:
    """Start or join Ray unless this process already has; whether it was started here."""
    import ray

    if ray.is_initialized():
        return False
    for name, value in _RAY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    # RAY_ADDRESS joins a running cluster; otherwise a new one, never one found by chance.
    address = os.environ.get("RAY_ADDRESS") or "local"
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if address == "local" and num_cpus is not None:
        options["num_cpus"] = num_cpus
    ray.init(address=address, **options)
    return True


@contextmanager
def ray_server(
    open_workspace: Callable[[], Workspace],
    refs: Sequence[str],
    options: ServeOptions,
    ray_options: dict[str, Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    num_cpus: int | None = None,
    log_level: str = "info",
) -> Iterator[str]:
    """Serve ``refs`` as Ray Serve's application ``weightbase`` on ``host:port``: its URL.

    Each replica calls ``open_workspace``, which Ray sends to it: a picklable callable
    such as ``functools.partial(weightbase.open, "/abs/home")`` (a workspace holds
    connections and cannot be sent). ``ray_options`` are the deployment's
    (:func:`ray_deployment_options`); ``num_cpus`` bounds a local Ray started here;
    ``log_level`` is Serve's. It returns once every replica has started (models load on
    their first request); on leaving, the application stops, and Serve and Ray with it
    where Ray was started here.
    """
    require_ray_extra()
    import ray
    from ray import serve

    from weightbase.serving.pool import served_names

    served_names(refs)  # refuses a ref given twice before anything starts
    started = _start_ray(num_cpus)
    try:
        logging = {"log_level": log_level.upper()}
        serve.start(http_options={"host": host, "port": port}, logging_config=logging)
        deployment = serve.deployment(name=APP_NAME, **ray_options)(_replica_class())
        application = deployment.bind(open_workspace, list(refs), options)
        serve.run(application, name=APP_NAME, route_prefix="/", logging_config=logging)
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{port}"
    finally:
        if started:
            try:
                serve.shutdown()  # type: ignore[no-untyped-call]
            finally:
                ray.shutdown()
        else:  # a Ray someone else runs keeps its other applications
            serve.delete(APP_NAME)
