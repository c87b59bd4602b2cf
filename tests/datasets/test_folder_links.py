"""Dataset folders are read as model folders are: nothing outside the folder, no special files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from weightbase.datasets.loaders import from_image_folder
from weightbase.errors import ValidationError

PIL = pytest.importorskip("PIL.Image")


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.fromarray(np.full((4, 4), value, dtype=np.uint8)).save(path)


def test_a_link_out_of_the_folder_is_refused_and_nothing_is_read(tmp_path: Path) -> None:
    root = tmp_path / "images"
    _image(root / "cat" / "a.png", 1)
    outside = tmp_path / "elsewhere" / "secret.png"
    _image(outside, 200)
    (root / "cat" / "b.png").symlink_to(outside)
    with pytest.raises(ValidationError, match="outside"):
        from_image_folder(root)


def test_links_inside_the_folder_are_read(tmp_path: Path) -> None:
    root = tmp_path / "images"
    _image(root / "cat" / "a.png", 1)
    (root / "cat" / "b.png").symlink_to(root / "cat" / "a.png")
    content = from_image_folder(root)
    assert content.sample_count == 2


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_broken_links_are_refused(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "images"
    _image(root / "cat" / "a.png", 1)
    link = root / "cat" / "b.png"
    if kind == "dangling":
        link.symlink_to(root / "cat" / "missing.png")
    else:
        link.symlink_to(link)
    with pytest.raises(ValidationError, match="symlink"):
        from_image_folder(root)


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    root = tmp_path / "images"
    _image(root / "cat" / "a.png", 1)
    os.mkfifo(root / "cat" / "b.png")
    started = time.monotonic()
    with pytest.raises(ValidationError, match="not a regular file"):
        from_image_folder(root)
    assert time.monotonic() - started < 5
