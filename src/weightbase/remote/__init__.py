"""Remote workspaces: the Python API over a ``weightbase server``.

``weightbase.open("http://host:8080", token=...)`` (or ``WEIGHTBASE_URL`` and
``WEIGHTBASE_TOKEN``) returns a :class:`RemoteWorkspace`: ``wb.models``,
``wb.datasets``, ``wb.runs`` and ``wb.store`` with the embedded workspace's
methods and records. Weights move chunk by chunk, only those the server lacks.
"""

from weightbase.remote.http import Connection, RetryPolicy
from weightbase.remote.workspace import RemoteWorkspace, connect

__all__ = ["Connection", "RemoteWorkspace", "RetryPolicy", "connect"]
