"""Loaders on real data: scikit-learn's bundled sets, Parquet, images, text and WAV folders."""

from __future__ import annotations

import io
import json
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine

from weightbase.datasets import (
    LAYOUT_KEY,
    DatasetContent,
    DatasetFormat,
    DatasetKind,
    UnreadableFilesError,
    from_audio_folder,
    from_image_folder,
    from_numpy,
    from_pandas,
    from_parquet,
    from_text_folder,
)
from weightbase.datasets.loaders import (
    from_csv,
    from_numpy_file,
)
from weightbase.datasets.sources import SourceFormat, detect_format, from_path
from weightbase.errors import MalformedFileError, MissingExtraError, ValidationError
from weightbase.tensors import TensorStore

pd = pytest.importorskip("pandas")
Image = pytest.importorskip("PIL.Image")


def through_store(content: DatasetContent, tmp_path: Path) -> DatasetContent:
    """Write to a real tensor store and read back, as the catalog layer will."""
    with TensorStore.open(tmp_path / "store") as store:
        snapshot = store.write(content.arrays, metadata=content.metadata)
        arrays = store.read(snapshot.id)
        return DatasetContent.from_stored(arrays, store.snapshot(snapshot.id).metadata)


# -- arrays and tables -----------------------------------------------------------------------


def test_digits_through_the_tensor_store(tmp_path: Path) -> None:
    digits = load_digits()
    content = from_numpy(digits.data, digits.target)
    assert (content.kind, content.format) == (DatasetKind.SUPERVISED, DatasetFormat.TENSOR)
    assert content.sample_count == 1797
    back = through_store(content, tmp_path)
    x, y = back.to_numpy()
    np.testing.assert_array_equal(x, digits.data)
    np.testing.assert_array_equal(y, digits.target)
    assert back.metadata == content.metadata


def test_string_targets_become_classes() -> None:
    iris = load_iris()
    names = iris.target_names[iris.target]
    content = from_numpy(iris.data, names, features=iris.feature_names, target="species")
    assert content.classes == ("setosa", "versicolor", "virginica")
    assert content.features == tuple(iris.feature_names)
    np.testing.assert_array_equal(content.arrays["y"], iris.target)
    np.testing.assert_array_equal(content.labels(), names)
    assert json.loads(content.metadata[LAYOUT_KEY])["target"] == "species"


def test_unlabelled_arrays_are_unsupervised_and_kind_can_be_given() -> None:
    x = load_wine().data
    assert from_numpy(x).kind is DatasetKind.UNSUPERVISED
    assert from_numpy(x, kind="meta-learning").kind is DatasetKind.META_LEARNING
    assert from_numpy(x, kind=DatasetKind.REINFORCEMENT).kind is DatasetKind.REINFORCEMENT
    with pytest.raises(ValidationError, match="unknown dataset kind"):
        from_numpy(x, kind="semi")


def test_from_numpy_refuses_bad_input() -> None:
    with pytest.raises(ValidationError, match="samples"):
        from_numpy(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValidationError, match="no samples"):
        from_numpy(np.zeros((0, 2)))
    with pytest.raises(ValidationError, match="dtype"):
        from_numpy(np.array([["a"]]))
    with pytest.raises(ValidationError, match="feature names"):
        from_numpy(np.zeros((3, 2)), features=["a"])


def test_content_is_read_only_and_does_not_share_the_callers_memory() -> None:
    x = np.zeros((4, 2))
    content = from_numpy(x)
    with pytest.raises(ValueError, match="read-only"):
        content.arrays["x"][0, 0] = 1.0
    x[0, 0] = 1.0  # the caller's array stays writeable, and is not shared
    assert content.arrays["x"][0, 0] == 0.0
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    table = from_pandas(frame)
    frame.loc[0, "a"] = 9.0
    assert table.to_pandas()["a"].tolist() == [1.0, 2.0]
    with pytest.raises(TypeError):
        content.arrays["y"] = x  # type: ignore[index]


def test_wine_table_through_parquet_and_the_store(tmp_path: Path) -> None:
    wine = load_wine(as_frame=True)
    frame = wine.frame
    frame["cultivar"] = pd.Series(np.array(["a", "b", "c"])[wine.target], dtype="str")
    frame.loc[3, "alcohol"] = np.nan
    path = tmp_path / "wine.parquet"
    frame.to_parquet(path)
    content = from_parquet(path, target="cultivar")
    assert content.format is DatasetFormat.TABLE
    assert content.sample_count == len(frame)
    assert content.target == "cultivar"
    assert "cultivar" not in content.features
    back = through_store(content, tmp_path)
    pd.testing.assert_frame_equal(back.to_pandas(), pd.read_parquet(path))
    assert list(back.labels()[:2]) == ["a", "a"]


def test_parquet_subset_of_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]}).to_parquet(path)
    content = from_parquet(path, columns=["a", "c"])
    assert [c.name for c in content.columns] == ["a", "c"]


def test_corrupt_parquet_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UnreadableFilesError) as caught:
        from_parquet(path)
    assert caught.value.paths == (str(path),)
    assert str(path) in str(caught.value)
    with pytest.raises(ValidationError, match="does not exist"):
        from_parquet(tmp_path / "absent.parquet")


def test_missing_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'weightbase\[data\]'"):
        from_pandas(object())


def test_core_imports_without_the_data_extra() -> None:
    import subprocess

    code = (
        "import sys; import weightbase.datasets; "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'PIL', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- image folders ---------------------------------------------------------------------------


def write_digit_images(root: Path, count: int = 30) -> np.ndarray:
    """Digits as 8x8 grayscale PNGs in one folder per class; returns the pixels written."""
    digits = load_digits()
    pixels = (digits.images[:count] * 15).astype(np.uint8)
    for i, (image, label) in enumerate(zip(pixels, digits.target[:count], strict=True)):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{i:03d}.png")
    return pixels


def test_image_folder_with_class_subfolders(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    pixels = write_digit_images(root)
    (root / ".DS_Store").write_bytes(b"junk")  # hidden files are not samples
    (root / "README.md").write_text("not an image")
    content = from_image_folder(root)
    assert content.kind is DatasetKind.SUPERVISED
    assert content.sample_count == 30
    assert content.arrays["images"].shape == (30, 8, 8)
    back = through_store(content, tmp_path)
    by_file = {
        int(Path(name).stem): image for name, image in zip(back.files, back.images(), strict=True)
    }
    for i, image in by_file.items():
        np.testing.assert_array_equal(image, pixels[i])
    labels = back.labels()
    assert labels is not None
    assert {str(label) for label in labels} <= {f"class_{d}" for d in range(10)}
    assert all(f.startswith(str(label)) for f, label in zip(back.files, labels, strict=True))


def test_images_of_different_sizes_and_modes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (4, 4), dtype=np.uint8)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "a.png")
    Image.fromarray(gray, mode="L").save(tmp_path / "b.bmp")
    palette = Image.fromarray(gray, mode="L").convert("P")
    palette.save(tmp_path / "c.gif")
    content = from_image_folder(tmp_path)
    assert content.kind is DatasetKind.UNSUPERVISED  # files at the top: no labels
    assert content.labels() is None
    images = content.images()
    np.testing.assert_array_equal(images[0], rgb)
    np.testing.assert_array_equal(images[1], gray)
    assert images[2].shape == (4, 4, 3)  # a palette image is stored as RGB
    assert "images" not in content.arrays
    converted = from_image_folder(tmp_path, mode="RGB")
    assert [im.shape[2] for im in converted.images()] == [3, 3, 3]


def test_image_folder_with_corrupt_files_reports_every_path(tmp_path: Path) -> None:
    root = tmp_path / "digits"
    write_digit_images(root, count=12)
    broken = root / "class_1" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    png = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(noise).save(png, format="PNG")
    truncated = root / "class_2" / "truncated.png"
    truncated.write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    before = sorted(p.name for p in root.rglob("*"))
    with pytest.raises(UnreadableFilesError) as caught:
        from_image_folder(root)
    error = caught.value
    assert isinstance(error, MalformedFileError)
    assert set(error.paths) == {str(broken), str(truncated)}
    assert set(error.reasons) == set(error.paths)
    assert str(broken) in str(error)
    assert str(truncated) in str(error)
    assert "2 files" in str(error)
    assert sorted(p.name for p in root.rglob("*")) == before  # nothing touched


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a folder"):
        from_image_folder(tmp_path / "absent")
    with pytest.raises(ValidationError, match="no image files"):
        from_image_folder(tmp_path)
    Image.fromarray(np.zeros((2, 2), dtype=np.uint8)).save(tmp_path / "loose.png")
    with pytest.raises(ValidationError, match="class subfolders"):
        from_image_folder(tmp_path, labels=True)


# -- text folders ----------------------------------------------------------------------------


def test_text_folder_round_trip(tmp_path: Path) -> None:
    documents = {
        "pos/1.txt": "A fine film. Très bien 👍",
        "pos/2.txt": "Loved it",
        "neg/1.txt": "Dull.\nVery dull.",
        "neg/2.txt": "",
    }
    for name, text in documents.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    content = through_store(from_text_folder(tmp_path), tmp_path / "s")
    assert content.format is DatasetFormat.TEXT
    assert content.classes == ("neg", "pos")
    assert dict(zip(content.files, content.texts(), strict=True)) == documents
    labels = content.labels()
    assert labels is not None
    assert [str(label) for label in labels] == [f.split("/")[0] for f in content.files]


def test_text_folder_reports_undecodable_files(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("fine")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café".encode("latin-1"))
    with pytest.raises(UnreadableFilesError) as caught:
        from_text_folder(tmp_path)
    assert caught.value.paths == (str(bad),)
    assert "UnicodeDecodeError" in caught.value.reasons[str(bad)]
    assert from_text_folder(tmp_path, encoding="latin-1").texts() == ["fine", "café"]


# -- audio folders ---------------------------------------------------------------------------


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int) -> None:
    from weightbase.datasets.content import pcm_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(samples.shape[1])
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(pcm_bytes(samples, width))


def tone(frames: int, channels: int, amplitude: int) -> np.ndarray:
    t = np.arange(frames)[:, None]
    return (amplitude * np.sin(t / 7.0 + np.arange(channels))).astype(np.int32)


def test_audio_folder_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "audio"
    clips = {
        "yes/a.wav": (tone(800, 1, 20000).astype(np.int16), 8000),
        "yes/b.wav": (tone(1200, 1, 3000).astype(np.int16), 16000),
        "no/c.wav": (tone(500, 1, 12000).astype(np.int16), 8000),
    }
    for name, (samples, rate) in clips.items():
        write_wav(root / name, samples, rate, 2)
    content = through_store(from_audio_folder(root), tmp_path)
    assert content.format is DatasetFormat.AUDIO
    assert content.arrays["audio.samples"].shape == (2500, 1)
    for name, clip in zip(content.files, content.audio(), strict=True):
        samples, rate = clips[name]
        np.testing.assert_array_equal(clip.samples, samples)
        assert clip.sample_rate == rate
        assert clip.duration == pytest.approx(len(samples) / rate)
        assert clip.to_wav() == (root / name).read_bytes()


def test_audio_clips_of_mixed_widths_and_channels(tmp_path: Path) -> None:
    cases = {
        "u8.wav": (tone(100, 1, 100) + 128, 1),
        "stereo24.wav": (tone(90, 2, 8_000_000), 3),
        "s32.wav": (tone(80, 1, 2_000_000_000), 4),
    }
    for name, (samples, width) in cases.items():
        write_wav(tmp_path / name, samples, 22050, width)
    content = from_audio_folder(tmp_path)
    assert "audio.samples" not in content.arrays
    for name, clip in zip(content.files, content.audio(), strict=True):
        samples, width = cases[name]
        np.testing.assert_array_equal(clip.samples, samples)
        assert clip.sample_width == width
        assert clip.to_wav() == (tmp_path / name).read_bytes()


def test_audio_folder_reports_bad_wavs(tmp_path: Path) -> None:
    write_wav(tmp_path / "ok.wav", tone(100, 1, 1000).astype(np.int16), 8000, 2)
    not_wav = tmp_path / "noise.wav"
    not_wav.write_bytes(b"RIFF\x00\x00\x00\x00JUNKJUNK")
    full = (tmp_path / "ok.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(UnreadableFilesError) as caught:
        from_audio_folder(tmp_path)
    assert set(caught.value.paths) == {str(not_wav), str(cut)}


# -- a file or folder by its format ----------------------------------------------------------


def test_npz_conventions(tmp_path: Path) -> None:
    iris = load_iris()
    np.savez(tmp_path / "xy.npz", x=iris.data, y=iris.target)
    content = from_numpy_file(tmp_path / "xy.npz")
    np.testing.assert_array_equal(content.arrays["x"], iris.data)
    np.testing.assert_array_equal(content.arrays["y"], iris.target)
    assert (content.kind, content.target) == (DatasetKind.SUPERVISED, "y")

    # capital X, a target named by the caller
    np.savez(tmp_path / "named.npz", X=iris.data, species=iris.target)
    named = from_numpy_file(tmp_path / "named.npz", target="species")
    assert named.target == "species"
    np.testing.assert_array_equal(named.arrays["y"], iris.target)

    # one array, whatever its name, and no target: unsupervised
    np.savez(tmp_path / "one.npz", features=iris.data)
    assert from_numpy_file(tmp_path / "one.npz").kind is DatasetKind.UNSUPERVISED

    np.save(tmp_path / "x.npy", iris.data)
    alone = from_numpy_file(tmp_path / "x.npy", kind="meta-learning")
    assert (alone.kind, alone.sample_count) == (DatasetKind.META_LEARNING, 150)


def test_npz_that_breaks_the_conventions_is_refused(tmp_path: Path) -> None:
    data = load_iris().data
    np.savez(tmp_path / "xy.npz", x=data, y=np.zeros(150))
    with pytest.raises(ValidationError, match="has no array 'label'; it has x, y"):
        from_numpy_file(tmp_path / "xy.npz", target="label")
    np.savez(tmp_path / "two.npz", a=data, b=data)
    with pytest.raises(ValidationError, match="name the inputs 'x'"):
        from_numpy_file(tmp_path / "two.npz")
    np.save(tmp_path / "x.npy", data)
    with pytest.raises(ValidationError, match=r"a target needs an \.npz"):
        from_numpy_file(tmp_path / "x.npy", target="y")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValidationError, match=r"cannot read .* with numpy\.load"):
        from_numpy_file(tmp_path / "junk.npz")


def test_csv_table(tmp_path: Path) -> None:
    wine = load_wine(as_frame=True).frame
    wine.to_csv(tmp_path / "wine.csv", index=False)
    content = from_csv(tmp_path / "wine.csv", target="target")
    assert (content.format, content.sample_count) == (DatasetFormat.TABLE, len(wine))
    assert "target" not in content.features
    pd.testing.assert_frame_equal(content.to_pandas(), pd.read_csv(tmp_path / "wine.csv"))
    with pytest.raises(ValidationError, match=r"cannot read .* as CSV"):
        from_csv(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.npz", SourceFormat.NUMPY),
        ("a.NPY", SourceFormat.NUMPY),
        ("a.parquet", SourceFormat.PARQUET),
        ("a.pq", SourceFormat.PARQUET),
        ("a.csv", SourceFormat.CSV),
    ],
)
def test_detect_format_of_a_file(tmp_path: Path, name: str, expected: SourceFormat) -> None:
    (tmp_path / name).write_bytes(b"")
    assert detect_format(tmp_path / name) is expected


def test_detect_format_of_a_folder(tmp_path: Path) -> None:
    for fmt, files in [
        (SourceFormat.IMAGE, ["cat/1.png", "dog/2.JPG", "notes.txt"]),  # images before text
        (SourceFormat.AUDIO, ["a/1.wav"]),
        (SourceFormat.TEXT, ["a/1.txt", ".hidden.png"]),  # hidden files do not count
        (SourceFormat.PARQUET, ["part-0.parquet", "a/1.png"]),  # Parquet parts before all
    ]:
        folder = tmp_path / fmt.value
        for file in files:
            (folder / file).parent.mkdir(parents=True, exist_ok=True)
            (folder / file).write_bytes(b"")
        assert detect_format(folder) is fmt
    (tmp_path / "notes.md").write_text("hi")
    with pytest.raises(ValidationError, match=r"cannot tell the format of notes\.md"):
        detect_format(tmp_path / "notes.md")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="holds no Parquet, image, audio or text files"):
        detect_format(tmp_path / "empty")


def test_from_path_reads_each_format(tmp_path: Path) -> None:
    digits = load_digits()
    np.savez(tmp_path / "digits.npz", x=digits.data, y=digits.target)
    assert from_path(tmp_path / "digits.npz").sample_count == 1797
    wine = load_wine(as_frame=True).frame
    wine.to_parquet(tmp_path / "wine.parquet")
    wine.to_csv(tmp_path / "wine.csv", index=False)
    assert from_path(tmp_path / "wine.parquet", target="target").target == "target"
    assert from_path(tmp_path / "wine.csv", "csv", target="target").format is DatasetFormat.TABLE
    write_digit_images(tmp_path / "images", count=4)
    assert from_path(tmp_path / "images").format is DatasetFormat.IMAGE
    (tmp_path / "texts" / "a").mkdir(parents=True)
    (tmp_path / "texts" / "a" / "1.txt").write_text("hello")
    assert from_path(tmp_path / "texts", SourceFormat.TEXT).format is DatasetFormat.TEXT


def test_from_path_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    np.savez(tmp_path / "xy.npz", x=np.zeros((3, 2)))
    with pytest.raises(ValidationError, match="does not exist"):
        from_path(tmp_path / "absent.npz")
    with pytest.raises(ValidationError, match="format image reads a folder"):
        from_path(tmp_path / "xy.npz", "image")
    with pytest.raises(ValidationError, match="unknown format 'zip'; one of auto, numpy"):
        from_path(tmp_path / "xy.npz", "zip")
