"""Names with a line break or another control character at either end are refused everywhere.

A ``$`` anchor matches before a trailing newline, so ``"x\\n"`` once passed
every name rule written with one; each checker, each entry point and the API
refuse it now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from weightbase.config import default_actor
from weightbase.datasets import from_numpy
from weightbase.errors import ValidationError
from weightbase.events import _check_type
from weightbase.governance.audit import _check_name
from weightbase.governance.users import check_user_name
from weightbase.lineage import Node
from weightbase.lineage.edges import Relations
from weightbase.names import check_entity_name, check_tag
from weightbase.registry.aliases import check_alias
from weightbase.registry.metrics import check_metrics
from weightbase.registry.models import check_model_name
from weightbase.tensors.manifest import validate_name
from weightbase.tracking.lifecycle import check_run_name
from weightbase.tracking.params import check_tags
from weightbase.tracking.records import check_name
from weightbase.webhooks.service import _check_event_types
from weightbase.workspace import Workspace

HOSTILE = ["x\n", "x\r", "x\t", "\nx"]

CHECKERS: dict[str, Callable[[str], object]] = {
    "model": check_model_name,
    "dataset": lambda name: check_entity_name(name, what="dataset"),
    "alias": check_alias,
    "tag": check_tag,
    "run tag": lambda name: check_tags([name]),
    "file": lambda name: validate_name(f"folder/{name}", what="file"),
    "ref": lambda name: validate_name(f"models/{name}", what="ref"),
    "experiment": lambda name: check_name(name, what="experiment"),
    "metric": check_name,
    "param": lambda name: check_name(name, what="param"),
    "run name": check_run_name,
    "user": check_user_name,
    "team": lambda name: check_user_name(name, what="team"),
    "version metric": lambda name: check_metrics({name: 1.0}),
    "event type": _check_type,
    "webhook event type": lambda name: _check_event_types([name]),
    "audit action": lambda name: _check_name("action", name, 128),
    "lineage kind": lambda name: Node(name, "1"),
    "lineage relation": lambda name: Relations().register(name),
}


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
@pytest.mark.parametrize("checker", list(CHECKERS))
def test_every_name_checker_refuses_control_characters(checker: str, name: str) -> None:
    with pytest.raises(ValidationError):
        CHECKERS[checker](name.replace("x", "abc"))


@pytest.mark.parametrize("checker", list(CHECKERS))
def test_every_name_checker_still_takes_a_plain_name(checker: str) -> None:
    CHECKERS[checker]("abc")


def _state(workspace: Workspace) -> tuple[object, ...]:
    return (
        workspace.models.list(),
        workspace.datasets.list(),
        workspace.runs.experiments(),
        sorted(workspace.store.refs().items()),
        sorted(workspace.store.snapshots()),
    )


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_the_library_refuses_hostile_names_and_writes_nothing(
    workspace: Workspace, name: str
) -> None:
    weights = {"w": np.ones(4, dtype=np.float32)}
    workspace.models.push("base", weights, version="1.0.0")
    before = _state(workspace)
    attempts: list[Callable[[], Any]] = [
        lambda: workspace.models.push(name, weights),
        lambda: workspace.models.push("other", weights, tags=[name]),
        lambda: workspace.models.push("other", weights, aliases=[name]),
        lambda: workspace.models.set_alias("base", name, "1.0.0"),
        lambda: workspace.models.create(name),
        lambda: workspace.datasets.register(name, from_numpy(np.ones((4, 2)))),
        lambda: workspace.runs.start(name),
        lambda: workspace.runs.start("exp", name=name),
        lambda: workspace.runs.start("exp", tags=[name]),
        lambda: workspace.runs.create_experiment(name),
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError):
            attempt()
    assert _state(workspace) == before


@pytest.fixture
def api(live_server: Any, workspace: Workspace) -> Iterator[httpx.Client]:
    """A raw HTTP client on the live server, serving ``workspace`` with a model ``base``."""
    workspace.models.push("base", {"w": np.ones(4, dtype=np.float32)}, version="1.0.0")
    with live_server.serving(workspace):
        token = workspace.access.tokens.create(default_actor(), name="raw").secret
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers) as client:
            yield client


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_the_api_answers_422_to_hostile_names(
    api: httpx.Client, workspace: Workspace, name: str, tmp_path: Path
) -> None:
    before = _state(workspace)
    requests = [
        ("POST", "/models", {"name": name}),
        ("POST", "/models", {"name": "fine", "tags": [name]}),
        ("POST", "/models/base/-/tags", {"add": [name]}),
        ("PUT", f"/models/base/-/aliases/{quote(name, safe='')}", {"version": "1.0.0"}),
        ("POST", "/experiments", {"name": name}),
        ("POST", "/runs", {"experiment": name}),
        ("POST", "/runs", {"experiment": "exp", "name": name}),
        ("POST", "/runs", {"experiment": "exp", "tags": [name]}),
    ]
    for method, path, body in requests:
        response = api.request(method, path, json=body)
        assert response.status_code == 422, (method, path, body, response.text)
    assert _state(workspace) == before
