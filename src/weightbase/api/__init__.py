"""The REST API: a FastAPI app over one workspace's services, under ``/api/v1``.

    from weightbase.api import ServerOptions, create_app
    app = create_app(lambda: weightbase.open(), ServerOptions(anonymous_read=True))

Needs the ``[server]`` extra (FastAPI, uvicorn, prometheus-client); without it,
importing this package raises ``MissingExtraError`` naming the extra.
"""

from __future__ import annotations

from weightbase.api._extras import require_server_extra

require_server_extra()

from weightbase.api.app import ServerOptions, create_app  # noqa: E402
from weightbase.api.auth import Authenticator, Principal  # noqa: E402

__all__ = ["Authenticator", "Principal", "ServerOptions", "create_app"]
