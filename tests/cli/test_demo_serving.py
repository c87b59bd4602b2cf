"""The demo's serving part without its extras: it says what to install and deploys nothing.

With them, ``tests/test_cli.py::test_demo_runs_end_to_end`` serves both models for real.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import weightbase
from weightbase.cli import demo_serving


def test_without_the_server_extra_the_part_is_skipped_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "uvicorn" else find_spec(name, *args),
    )
    with weightbase.open(tmp_path) as wb:
        result = demo_serving.serve_models(
            wb, digits="digits-mlp@0.1.0", minilm="minilm@latest", dataset="digits@0.1.0"
        )
        assert wb.deployments.list(include_stopped=True) == []
    assert result == {
        "skipped": "uvicorn not installed; the serving part needs "
        "pip install 'weightbase[server,hf]'"
    }
    demo_serving.render_serving(result)
    assert "weightbase[server,hf]" in capsys.readouterr().out
