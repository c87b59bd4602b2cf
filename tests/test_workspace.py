"""``weightbase.open()``: a catalog, a store and the services, created on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import weightbase
from weightbase.catalog.migrate import head_revision
from weightbase.lineage import Node


def test_open_creates_a_fresh_home(weightbase_home: Path) -> None:
    assert not weightbase_home.exists()
    with weightbase.open() as wb:
        assert isinstance(wb, weightbase.Workspace)
        assert wb.home == weightbase_home
        assert wb.catalog.dialect == "sqlite"
        assert wb.catalog.revision() == head_revision()
        assert isinstance(wb.store, weightbase.TensorStore)
        wb.events.emit("workspace_opened", {"n": 1})
    assert (weightbase_home / "catalog.db").is_file()
    assert (weightbase_home / "store").is_dir()
    assert wb.closed


def test_reopening_sees_what_was_written(weightbase_home: Path) -> None:
    with weightbase.open() as wb:
        wb.lineage.add_edge(Node("model_version", "2"), Node("model_version", "1"), "derived_from")
        snapshot = wb.store.write({"w": np.arange(4, dtype=np.float32)})
    with weightbase.open(weightbase_home) as wb:
        assert [str(r.node) for r in wb.lineage.ancestors(Node("model_version", "2"))] == [
            "model_version:1"
        ]
        assert wb.store.snapshot(snapshot.id).id == snapshot.id
        assert [entry.actor for entry in wb.audit.entries()] == ["test-user"]
        assert [event.type for event in wb.events.history()] == ["lineage_edge_added"]


def test_arguments_win_over_the_environment(
    weightbase_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIGHTBASE_CATALOG_URL", f"sqlite:///{tmp_path / 'from-env.db'}")
    elsewhere = tmp_path / "elsewhere"
    with weightbase.open(
        elsewhere,
        catalog_url=f"sqlite:///{tmp_path / 'explicit.db'}",
        store_url=str(tmp_path / "s"),
    ) as wb:
        assert wb.home == elsewhere
        assert wb.catalog.url.endswith("explicit.db")
    assert (tmp_path / "explicit.db").is_file()
    assert (tmp_path / "s").is_dir()
    assert not (tmp_path / "from-env.db").exists()
    with weightbase.open(elsewhere) as wb:  # the environment, then home
        assert wb.catalog.url.endswith("from-env.db")
        assert Path(wb.store.objects.url.removeprefix("file://")) == elsewhere / "store"


def test_close_twice_is_harmless(weightbase_home: Path) -> None:
    wb = weightbase.open()
    wb.close()
    wb.close()
    assert wb.closed


def test_the_workspace_fixture_runs_on_each_database(
    workspace: weightbase.Workspace, catalog_backend: str
) -> None:
    expected = {"sqlite": "sqlite", "postgres": "postgresql"}[catalog_backend]
    assert workspace.catalog.dialect == expected
    heard: list[str] = []
    workspace.events.on("lineage_edge_added", lambda event: heard.append(event.type))
    workspace.lineage.add_edge(Node("run", "r1"), Node("dataset_version", "d1"), "trained_on")
    assert heard == ["lineage_edge_added"]
    assert workspace.audit.entries("lineage_edge")[0].action == "lineage.add_edge"


def test_open_and_workspace_are_exported() -> None:
    assert {"open", "Workspace"} <= set(weightbase.__all__)
    assert weightbase.open.__module__ == "weightbase.workspace"


def test_import_weightbase_stays_cheap() -> None:
    code = (
        "import sys, weightbase; "
        "print(','.join(m for m in ('torch', 'sqlalchemy', 'alembic') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
