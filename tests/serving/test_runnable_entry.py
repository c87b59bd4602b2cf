"""Versions pushed with an entry point: the user's module class or predict function, built
by ``load_runnable`` embedded and through a remote workspace."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.conftest import remote_variants  # noqa: E402
from tests.serving.models_entry import TinyMLP  # noqa: E402

from weightbase.errors import ValidationError  # noqa: E402
from weightbase.serving.runnable import clear_runnables, load_runnable  # noqa: E402
from weightbase.workspace import Workspace  # noqa: E402

MLP = "tests.serving.models_entry:TinyMLP"
MLP_ARGS = {"inputs": 4, "hidden": 8, "outputs": 3}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def wb(remote_or_embedded: Workspace) -> Any:
    clear_runnables()
    yield remote_or_embedded
    clear_runnables()


def _mlp() -> TinyMLP:
    torch.manual_seed(0)
    return TinyMLP(**MLP_ARGS)


def test_a_module_entry_point_is_built_with_its_init_args_and_weights(wb: Any) -> None:
    model = _mlp()
    version = wb.models.push("mlp", model, entry_point=MLP, init_args=MLP_ARGS)
    runnable = load_runnable(wb, "mlp@latest")
    assert runnable.task == "predict"
    assert runnable.version.ref == version.ref
    batch = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    outputs = runnable.predict(list(batch))
    expected = model(torch.from_numpy(batch)).detach().numpy()
    np.testing.assert_allclose(np.stack(outputs), expected, rtol=1e-6, atol=1e-6)


def test_the_entry_point_is_part_of_the_content(wb: Any) -> None:
    model = _mlp()
    first = wb.models.push("mlp", model.state_dict(), entry_point=MLP, init_args=MLP_ARGS)
    again = wb.models.push("mlp", model.state_dict(), entry_point=MLP, init_args=MLP_ARGS)
    assert not again.created
    assert again.version == first.version
    other = wb.models.push(
        "mlp", model.state_dict(), entry_point=MLP, init_args={**MLP_ARGS, "hidden": 8.0}
    )
    assert other.created  # other init args: another version
    plain = wb.models.push("mlp", model.state_dict())
    assert plain.created
    assert plain.content_digest != first.content_digest


def test_a_stored_snapshot_keeps_the_entry_point_it_was_written_with(wb: Any) -> None:
    first = wb.models.push("mlp", _mlp(), entry_point=MLP, init_args=MLP_ARGS)
    snapshot = wb.store.snapshot(first.snapshot_id)
    again = wb.models.push("copy", snapshot, entry_point=MLP, init_args=MLP_ARGS)
    assert again.content_digest == first.content_digest
    assert load_runnable(wb, "copy@latest").task == "predict"
    with pytest.raises(ValidationError, match="stored without the entry point"):
        wb.models.push("copy", snapshot, entry_point="tests.serving.models_entry:predict")
    plain = wb.models.push("plain", _mlp().state_dict())
    with pytest.raises(ValidationError, match="stored without the entry point"):
        wb.models.push("plain", wb.store.snapshot(plain.snapshot_id), entry_point=MLP)


def test_a_predict_entry_point_takes_the_batch_and_the_weights(wb: Any) -> None:
    weights = {"w": np.array([1.0, 2.0, 3.0], dtype=np.float32)}
    wb.models.push(
        "scorer",
        weights,
        entry_point="tests.serving.models_entry:predict",
        init_args={"scale": 2.0},
    )
    runnable = load_runnable(wb, "scorer@latest")
    assert runnable.task == "predict"
    assert runnable.predict([[1, 0, 0], [0, 1, 1]]) == [2.0, 10.0]


def test_a_predict_without_weights(wb: Any) -> None:
    wb.models.push(
        "lengths",
        {"w": np.zeros(1, np.float32)},
        entry_point="tests.serving.models_entry:predict_plain",
    )
    assert load_runnable(wb, "lengths@latest", task="predict").predict(["ab", "abc"]) == [2, 3]


@pytest.mark.parametrize(
    "target",
    ["tests/serving/models_entry.py", "models_entry", "a.b:c.d", "os.system; rm", ":Name", ""],
)
def test_an_entry_point_that_is_not_module_colon_name_is_refused(wb: Any, target: str) -> None:
    with pytest.raises(ValidationError, match=r"package\.module:Name"):
        wb.models.push("mlp", _mlp(), entry_point=target)
    with pytest.raises(KeyError):
        wb.models.get("mlp")  # nothing was pushed


def test_init_args_that_are_not_json_or_without_entry_point_are_refused(wb: Any) -> None:
    with pytest.raises(ValidationError, match="not JSON"):
        wb.models.push("mlp", _mlp(), entry_point=MLP, init_args={"inputs": object()})
    with pytest.raises(ValidationError, match="need an entry_point"):
        wb.models.push("mlp", _mlp(), init_args=MLP_ARGS)


def test_an_entry_point_that_cannot_be_imported_is_a_clear_error(wb: Any) -> None:
    wb.models.push("gone", _mlp(), entry_point="tests.serving.no_such_module:Model")
    with pytest.raises(ValidationError, match=r"cannot import tests\.serving\.no_such_module"):
        load_runnable(wb, "gone@latest")
    wb.models.push("missing", _mlp(), entry_point="tests.serving.models_entry:Nothing")
    with pytest.raises(ValidationError, match="has no 'Nothing'"):
        load_runnable(wb, "missing@latest")
    wb.models.push("constant", _mlp(), entry_point="tests.serving.models_entry:NOT_CALLABLE")
    with pytest.raises(ValidationError, match="not a class or a predict function"):
        load_runnable(wb, "constant@latest")


def test_weights_that_do_not_fit_the_class_are_refused(wb: Any) -> None:
    wb.models.push("wide", _mlp(), entry_point=MLP, init_args={**MLP_ARGS, "hidden": 16})
    with pytest.raises(ValidationError, match="do not fit") as shapes:
        load_runnable(wb, "wide@latest")
    assert "hidden.weight" in str(shapes.value)
    state = {**_mlp().state_dict(), "extra.weight": torch.zeros(2)}
    del state["out.bias"]
    wb.models.push("odd", state, entry_point=MLP, init_args=MLP_ARGS)
    with pytest.raises(ValidationError, match=r"missing out\.bias; unexpected extra\.weight"):
        load_runnable(wb, "odd@latest")
    wb.models.push("badargs", _mlp(), entry_point=MLP, init_args={"width": 3})
    with pytest.raises(ValidationError, match="cannot be built with its init_args"):
        load_runnable(wb, "badargs@latest")


def test_a_task_the_entry_point_does_not_serve_is_refused(wb: Any) -> None:
    wb.models.push("mlp", _mlp(), entry_point=MLP, init_args=MLP_ARGS)
    with pytest.raises(ValidationError, match="serves predict, not embeddings"):
        load_runnable(wb, "mlp@latest", task="embeddings")
    with pytest.raises(ValidationError, match="unknown task 'translate'"):
        load_runnable(wb, "mlp@latest", task="translate")


def test_a_version_with_neither_config_nor_entry_point_is_not_guessed(wb: Any) -> None:
    wb.models.push("bare", _mlp())
    with pytest.raises(ValidationError, match="without guessing"):
        load_runnable(wb, "bare@latest")


def test_a_version_is_built_once_per_process_even_by_threads_at_once(
    wb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from weightbase.serving import runnable_entry

    wb.models.push("mlp", _mlp(), entry_point=MLP, init_args=MLP_ARGS)
    builds = []
    real = runnable_entry.build_entry_point
    gate = threading.Barrier(4)

    def counted(*args: Any) -> Any:
        builds.append(1)
        return real(*args)

    monkeypatch.setattr(runnable_entry, "build_entry_point", counted)
    got: list[Any] = []

    def ask() -> None:
        gate.wait()
        got.append(load_runnable(wb, "mlp@latest"))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert len({id(runnable.module) for runnable in got}) == 1
    assert load_runnable(wb, "mlp@latest").module is got[0].module
    # another device or task is another build; the same snapshot under another version is not
    wb.models.set_alias("mlp", "production", got[0].version.version)
    assert load_runnable(wb, "mlp@production").module is got[0].module
    assert len(builds) == 1


def test_a_loaded_version_is_found_again_without_reading_its_files(
    wb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.serving.test_runnable_hf import _bert, _folder

    wb.models.push("encoder", _folder(tmp_path, _bert("BertModel"), "encoder"))
    first = load_runnable(wb, "encoder@latest")
    reads: list[str] = []
    real = type(wb.store).file_bytes

    def counted(store: Any, snapshot: Any, name: str) -> bytes:
        reads.append(name)
        return real(store, snapshot, name)

    monkeypatch.setattr(type(wb.store), "file_bytes", counted)
    assert load_runnable(wb, "encoder@latest").model is first.model
    assert reads == []


@pytest.mark.cuda
def test_a_module_entry_point_on_cuda(wb: Any) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = _mlp()
    wb.models.push("mlp", model, entry_point=MLP, init_args=MLP_ARGS)
    runnable = load_runnable(wb, "mlp@latest", device="cuda")
    assert runnable.device.startswith("cuda")
    assert all(p.device.type == "cuda" for p in runnable.module.parameters())
    batch = np.ones((2, 4), np.float32)
    expected = model(torch.from_numpy(batch)).detach().numpy()
    np.testing.assert_allclose(np.stack(runnable.predict(list(batch))), expected, atol=1e-5)


def test_cuda_without_a_device_is_a_device_error(wb: Any) -> None:
    from weightbase.errors import DeviceError

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    wb.models.push("mlp", _mlp(), entry_point=MLP, init_args=MLP_ARGS)
    with pytest.raises(DeviceError, match="CUDA"):
        load_runnable(wb, "mlp@latest", device="cuda")
