"""The ``[server]`` extra: the API needs FastAPI, uvicorn and prometheus-client.

The core imports without them; importing :mod:`weightbase.api` says which extra to install.
"""

from __future__ import annotations

import importlib

from weightbase.errors import MissingExtraError

__all__ = ["SERVER_MODULES", "require_server_extra"]

SERVER_MODULES = ("fastapi", "uvicorn", "prometheus_client")


def require_server_extra(modules: tuple[str, ...] = SERVER_MODULES) -> None:
    """Import ``modules`` or raise ``MissingExtraError`` naming ``weightbase[server]``."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingExtraError(
                f"the weightbase server needs {module}, which is not installed; "
                "pip install 'weightbase[server]'",
                module=module,
                extra="server",
            ) from exc
