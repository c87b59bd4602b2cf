"""Migration 0010 on a catalog with metric points: they stay, none superseded, and back down."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sqlalchemy as sa
from alembic import command

import weightbase
from weightbase.catalog import migrate as migrate_module
from weightbase.catalog.migrate import alembic_config


def test_points_logged_before_0010_are_kept_and_shown(catalog_url: str, tmp_path: Path) -> None:
    with weightbase.open(tmp_path, catalog_url=catalog_url) as wb:
        with wb.runs.start("old") as run:
            run.log_series("train/loss", np.linspace(1, 0, 5), steps=np.arange(5))
        engine = wb.catalog.engine
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0009")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("metric_blocks")}
        assert "superseded" not in columns
        migrate_module.upgrade(engine)
        columns = {c["name"] for c in sa.inspect(engine).get_columns("metric_blocks")}
        assert "superseded" in columns
        with engine.connect() as connection:
            flags = connection.execute(sa.text("SELECT superseded FROM metric_blocks")).all()
        assert flags
        assert not any(flag for (flag,) in flags)
        assert wb.runs.history(run.id, "train/loss").steps.tolist() == [0, 1, 2, 3, 4]
