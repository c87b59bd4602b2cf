"""Hostile inputs through ``weightbase models push`` and ``weightbase store put``: each ends
with its error class's exit code, one ``error:`` line and no traceback, and stores nothing."""

from __future__ import annotations

import json
import os
import pickle
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import weightbase
from weightbase.cli import ExitCode, main
from weightbase.tensors import TensorStore

safetensors_numpy = pytest.importorskip("safetensors.numpy")

GROUP = "models"


class Pwned:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, ("echo pwned",))


def _folder(root: Path) -> Path:
    root.mkdir()
    safetensors_numpy.save_file(
        {"w": np.arange(4, dtype=np.float32)}, str(root / "model.safetensors")
    )
    (root / "config.json").write_text('{"model_type": "tiny"}')
    return root


def _deep_header(tmp: Path) -> Path:
    header = b"[" * 100_000 + b"]" * 100_000
    path = tmp / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


def _bad_index(tmp: Path) -> Path:
    folder = _folder(tmp / "sharded")
    index = {"weight_map": {"w": None}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def _symlink_loop(tmp: Path) -> Path:
    folder = _folder(tmp / "model")
    os.symlink("b", folder / "a")
    os.symlink("a", folder / "b")
    return folder


def _dangling_symlink(tmp: Path) -> Path:
    folder = _folder(tmp / "model")
    os.symlink("gone.json", folder / "tokenizer.json")
    return folder


def _symlink_outside(tmp: Path) -> Path:
    (tmp / "secret.txt").write_text("not part of any model")
    folder = _folder(tmp / "model")
    os.symlink(tmp / "secret.txt", folder / "tokenizer.json")
    return folder


def _meta_tensor(tmp: Path) -> Path:
    path = tmp / "meta.pt"
    torch.save({"w": torch.empty(3, device="meta")}, path)
    return path


def _fifo(tmp: Path) -> Path:
    path = tmp / "x.safetensors"
    os.mkfifo(path)
    return path


def _fifo_in_folder(tmp: Path) -> Path:
    folder = _folder(tmp / "model")
    os.mkfifo(folder / "x.pt")
    return folder


def _random_pt(tmp: Path) -> Path:
    path = tmp / "weights.pt"
    path.write_bytes(b"\x9f" + np.random.default_rng(1).bytes(4095))
    return path


def _callable_ckpt(tmp: Path) -> Path:
    path = tmp / "\x1b[31mevil\x1b[0m.ckpt"
    torch.save({"w": torch.ones(2), "hook": Pwned()}, path)
    return path


def _pickled_callable(tmp: Path) -> Path:
    path = tmp / "evil.pt"
    path.write_bytes(pickle.dumps({"w": Pwned()}, protocol=2))
    return path


def _empty_folder(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _config_only(tmp: Path) -> Path:
    (tmp / "config").mkdir()
    (tmp / "config" / "config.json").write_text("{}")
    return tmp / "config"


HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "deep-header": (_deep_header, "header nests JSON too deeply"),
    "bad-index": (_bad_index, "not a valid shard index"),
    "symlink-loop": (_symlink_loop, "is a symlink that loops"),
    "dangling-symlink": (_dangling_symlink, "is a symlink that dangles"),
    "symlink-outside": (_symlink_outside, "outside"),
    "meta-tensor": (_meta_tensor, "meta device"),
    "fifo": (_fifo, "not a regular file (a FIFO)"),
    "fifo-in-folder": (_fifo_in_folder, "not a regular file (a FIFO)"),
    "random-pt": (_random_pt, "not a torch archive"),
    "callable-ckpt": (_callable_ckpt, ".system"),  # os.system, or posix.system as pickled
    "pickled-callable": (_pickled_callable, ".system"),
    "empty-folder": (_empty_folder, "no tensors"),
    "config-only": (_config_only, "no tensors"),
}
COMMANDS = {"models-push": ("models", "push", "m"), "store-put": ("store", "put")}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
@pytest.mark.parametrize(("make", "says"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_input_is_one_error_line_and_stores_nothing(
    weightbase_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    make: Callable[[Path], Path],
    says: str,
    command: tuple[str, ...],
) -> None:
    source = tmp_path / "inputs"
    source.mkdir()
    path = make(source)
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["weightbase", *command, str(path)])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    assert exited.value.code == ExitCode.USAGE, captured
    assert "Traceback" not in captured.err
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: ")
    assert says in line
    for words in ("weights_only", "arbitrary code", "trusted source", "\x1b"):
        assert words not in line
    assert "pwned" not in captured.out + captured.err
    with weightbase.open(weightbase_home) as wb:
        assert list(wb.models.list()) == []
    store = TensorStore.open(str(weightbase_home / "store"))
    try:
        assert list(store.snapshots()) == []
        assert store.refs() == {}
    finally:
        store.close()
