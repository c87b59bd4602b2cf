"""Checkpoint state trees that cannot be stored or read back, and tensors across the two kinds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from weightbase.errors import ValidationError
from weightbase.training.state import capture_rng, flatten, restore_rng, unflatten

torch = pytest.importorskip("torch", reason="checkpoints of torch state need the [torch] extra")


@pytest.mark.parametrize(("key", "kind"), [(1.5, "float"), ((1, 2), "tuple"), (b"k", "bytes")])
def test_keys_that_json_cannot_hold_are_refused(key: object, kind: str) -> None:
    with pytest.raises(
        ValidationError, match=rf"cannot store a state dict key of type {kind} at opt\.state"
    ):
        flatten({key: 1}, "opt.state", {})


def test_int_bool_and_none_keys_round_trip() -> None:
    tree = {0: "zero", True: "yes", None: "nothing", "__private": 1}
    tensors: dict[str, Any] = {}
    back = unflatten(flatten(tree, "s", tensors), tensors)
    assert back == tree
    assert list(back) == list(tree)


def test_numpy_scalars_are_stored_as_plain_numbers() -> None:
    tensors: dict[str, Any] = {}
    tree = flatten(
        {"step": np.int64(3), "lr": np.float32(0.5), "loss": np.float64("inf")}, "s", tensors
    )
    assert tensors == {}
    assert tree == {"step": 3, "lr": 0.5, "loss": {"__float__": "inf"}}
    back = unflatten(tree, tensors)
    assert back == {"step": 3, "lr": 0.5, "loss": float("inf")}
    assert type(back["step"]) is int


def test_two_entries_flattening_to_one_name_are_refused() -> None:
    tree = {"a.b": np.zeros(1), "a": {"b": np.ones(1)}}
    with pytest.raises(
        ValidationError, match=r"two state entries flatten to the same name 's\.a\.b'"
    ):
        flatten(tree, "s", {})


def test_a_missing_tensor_is_refused_naming_it() -> None:
    tensors: dict[str, Any] = {}
    tree = flatten({"weight": torch.ones(2), "moments": np.zeros(3)}, "model", tensors)
    del tensors["model.weight"]
    with pytest.raises(ValidationError, match=r"checkpoint is missing tensor 'model\.weight'"):
        unflatten(tree, tensors)


def test_each_entry_comes_back_as_the_kind_it_went_in() -> None:
    # The store reads tensors back as NumPy arrays; torch tensors must become tensors again,
    # and arrays that a caller passes as tensors must become arrays.
    tensors: dict[str, Any] = {}
    tree = flatten({"weight": torch.arange(3.0), "counts": np.arange(2)}, "m", tensors)
    swapped = {
        "m.weight": tensors["m.weight"].numpy(),
        "m.counts": torch.from_numpy(tensors["m.counts"]),
    }
    back = unflatten(tree, swapped)
    assert isinstance(back["weight"], torch.Tensor)
    assert back["weight"].tolist() == [0.0, 1.0, 2.0]
    assert isinstance(back["counts"], np.ndarray)
    assert back["counts"].tolist() == [0, 1]


def test_tensors_are_stored_detached_on_the_cpu() -> None:
    weight = torch.ones(2, 2, requires_grad=True)
    tensors: dict[str, Any] = {}
    flatten({"w": weight.t()}, "m", tensors)
    stored = tensors["m.w"]
    assert not stored.requires_grad
    assert stored.is_contiguous()
    assert stored.device.type == "cpu"


@pytest.mark.cuda
def test_the_cuda_generators_are_captured_and_restored() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    captured = capture_rng()
    assert len(captured["cuda"]) == torch.cuda.device_count()
    tensors: dict[str, Any] = {}
    tree = flatten(captured, "rng", tensors)
    expected = torch.rand(4, device="cuda").tolist()
    torch.cuda.manual_seed_all(1234)
    assert torch.rand(4, device="cuda").tolist() != expected
    restore_rng(unflatten(tree, tensors))
    assert torch.rand(4, device="cuda").tolist() == expected
