"""The scanner on real model files: torch, optimizer, Lightning, Hugging Face, NumPy, joblib.

Zero findings on every one of them: an allowlist that flags real files is one users turn off.
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.tiny_models import tiny_bert_config

from weightbase.governance.scan import ALLOWLIST, ScanReport, scan_bytes, scan_path

torch = pytest.importorskip("torch")

DTYPES = [
    "bool",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
]


def _torch_bytes(value: object, **options: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer, **options)
    return buffer.getvalue()


def _assert_clean(report: ScanReport, *formats: str) -> None:
    assert report.findings == ()
    assert report.clean
    assert {scanned.format for scanned in report.files_scanned} == set(formats)


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_torch_save_of_every_dtype_is_clean(dtype_name: str) -> None:
    dtype = getattr(torch, dtype_name, None)
    if dtype is None:
        pytest.skip(f"torch {torch.__version__} has no {dtype_name}")
    tensors = {"weight": torch.zeros(4, 3, dtype=dtype), "scalar": torch.zeros((), dtype=dtype)}
    report = scan_bytes(_torch_bytes(tensors), name="tensors.pt")
    _assert_clean(report, "torch-zip", "pickle")


def test_torch_legacy_format_and_parameters_are_clean() -> None:
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    legacy = _torch_bytes(module.state_dict(), _use_new_zipfile_serialization=False)
    _assert_clean(scan_bytes(legacy, name="model.pt"), "torch-legacy")
    parameters = {name: p for name, p in module.named_parameters()}
    _assert_clean(scan_bytes(_torch_bytes(parameters), name="p.pth"), "torch-zip", "pickle")


def test_module_state_dict_and_optimizer_states_are_clean(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    optimizers = {
        "adamw": torch.optim.AdamW(module.parameters(), lr=1e-3),
        "sgd": torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9),
    }
    for optimizer in optimizers.values():
        module(torch.randn(5, 3)).sum().backward()
        optimizer.step()
    torch.save(module.state_dict(), tmp_path / "model.pt")
    for name, optimizer in optimizers.items():
        torch.save(optimizer.state_dict(), tmp_path / f"{name}.pt")
        assert optimizer.state_dict()["state"]  # steps were taken: the state holds tensors
    report = scan_path(tmp_path)
    assert report.findings == ()
    assert len([s for s in report.files_scanned if s.format == "torch-zip"]) == 3


def test_lightning_style_checkpoint_is_clean(tmp_path: Path) -> None:
    module = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(module.parameters())
    module(torch.randn(2, 3)).sum().backward()
    optimizer.step()
    checkpoint = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": module.state_dict(),
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [{"last_epoch": 3, "_step_count": 4, "base_lrs": [1e-3]}],
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 4}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss'}": {"best_model_score": 0.5}},
        "hyper_parameters": {"hidden": 32, "lr": 1e-3, "betas": (0.9, 0.999)},
    }
    torch.save(checkpoint, tmp_path / "last.ckpt")
    _assert_clean(scan_path(tmp_path / "last.ckpt"), "torch-zip", "pickle")


def test_lightning_trainer_checkpoint_is_clean(tmp_path: Path) -> None:
    lightning = pytest.importorskip("lightning")

    class Tiny(lightning.LightningModule):  # type: ignore[misc]
        def __init__(self, hidden: int = 4) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(3, hidden)

        def training_step(self, batch: Any, _: int) -> Any:
            return self.layer(batch[0]).sum()

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = lightning.Trainer(
            max_steps=2,
            default_root_dir=tmp_path,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        trainer.fit(Tiny(), data)
    (checkpoint,) = tmp_path.rglob("*.ckpt")
    _assert_clean(scan_path(checkpoint), "torch-zip", "pickle")


def test_hugging_face_pytorch_model_bin_is_clean(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    model = transformers.BertModel(tiny_bert_config())
    model.save_pretrained(tmp_path, safe_serialization=False)
    if not (tmp_path / "pytorch_model.bin").exists():
        # transformers 5 writes safetensors only; version 4 wrote the bin as torch.save of
        # the state dict, which is what the Hub's older pytorch_model.bin files are
        (tmp_path / "model.safetensors").unlink()
        torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    report = scan_path(tmp_path)
    assert report.findings == ()
    formats = {Path(s.path).name: s.format for s in report.files_scanned if s.member is None}
    assert formats == {"pytorch_model.bin": "torch-zip", "config.json": "text"}


def test_hugging_face_safetensors_folder_is_clean(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    transformers.BertModel(tiny_bert_config()).save_pretrained(tmp_path)
    _assert_clean(scan_path(tmp_path), "safetensors", "text")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_arrays_pickled_are_clean(protocol: int) -> None:
    arrays = {
        "floats": np.arange(12.0).reshape(3, 4),
        "fortran": np.asfortranarray(np.ones((2, 3), dtype=np.int16)),
        "strings": np.array(["a", "bc"]),
        "scalar": np.float32(1.5),
        "bytes": b"raw",
        "set": {1, 2},
        "complex": 1 + 2j,
    }
    report = scan_bytes(pickle.dumps(arrays, protocol=protocol), name="arrays.pkl")
    _assert_clean(report, "pickle")


def test_numpy_npy_and_npz_files_are_clean(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(6.0))
    np.savez(tmp_path / "b.npz", x=np.zeros(3), y=np.ones((2, 2), dtype=np.int8))
    report = scan_path(tmp_path)
    assert report.findings == ()
    assert [s.format for s in report.files_scanned] == ["numpy", "zip", "numpy", "numpy"]


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lz4", 3)])
def test_joblib_dumps_of_numpy_arrays_are_clean(tmp_path: Path, compress: Any) -> None:
    joblib = pytest.importorskip("joblib")
    if compress == ("lz4", 3):
        pytest.importorskip("lz4")
    graph = {
        "weights": [np.random.default_rng(0).standard_normal((16, 8)), np.arange(5)],
        "names": np.array(["a", "bb"]),
        "mixed": np.array([1, "x", None], dtype=object),
        "empty": np.zeros((0, 3)),
        "scalar": np.int64(7),
    }
    path = tmp_path / "graph.joblib"
    joblib.dump(graph, path, compress=compress)
    report = scan_path(path)
    assert report.findings == ()
    assert "joblib" in {s.format for s in report.files_scanned}


def test_the_allowlist_accepts_everything_weights_only_torch_load_does() -> None:
    weights_only = pytest.importorskip("torch._weights_only_unpickler")
    assert set(weights_only._get_allowed_globals()) <= ALLOWLIST
    for dangerous in ["os.system", "builtins.eval", "builtins.getattr", "posix.system"]:
        assert dangerous not in ALLOWLIST
