"""The public surface: exactly the intended names, and a core that imports without extras."""

from __future__ import annotations

import subprocess
import sys

import pytest

import weightbase
import weightbase.errors
import weightbase.tensors

WEIGHTBASE_NAMES = [
    "ApprovalRequired",
    "AuthenticationError",
    "Conflict",
    "DeviceError",
    "InferenceError",
    "InferenceTimeoutError",
    "IntegrityError",
    "MalformedFileError",
    "MissingExtraError",
    "ModelUnavailableError",
    "NotFound",
    "NotSupported",
    "PermissionDenied",
    "ServerBusyError",
    "ServingError",
    "Snapshot",
    "StorageError",
    "TensorStore",
    "UnsafeFormatError",
    "ValidationError",
    "WeightbaseError",
    "Workspace",
    "__version__",
    "open",
    "seed_everything",
]

TENSORS_NAMES = [
    "ChunkRef",
    "FileEntry",
    "FileSource",
    "FsckReport",
    "GcReport",
    "Sharing",
    "Snapshot",
    "TensorEntry",
    "TensorSource",
    "TensorStore",
    "WriteOptions",
    "WriteStats",
    "export_path",
    "import_path",
]


@pytest.mark.parametrize(
    ("module", "names"),
    [(weightbase, WEIGHTBASE_NAMES), (weightbase.tensors, TENSORS_NAMES)],
    ids=["weightbase", "weightbase.tensors"],
)
def test_exported_names_are_exactly_the_intended_ones(module: object, names: list[str]) -> None:
    exported = module.__all__  # type: ignore[attr-defined]
    assert sorted(exported) == sorted(names)
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert getattr(module, name) is not None, name


def test_every_public_class_says_where_it_lives() -> None:
    for module in (weightbase, weightbase.tensors):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type):
                assert value.__module__.startswith("weightbase."), name
                assert value.__doc__, f"{name} has no docstring"


def test_errors_have_one_root_and_the_builtin_bases() -> None:
    errors = weightbase.errors
    assert sorted(errors.__all__) == sorted(
        n
        for n in WEIGHTBASE_NAMES
        if n.endswith(("Error", "Found", "Conflict", "Denied", "Required", "Supported"))
    )
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.WeightbaseError)
        assert getattr(weightbase, name) is getattr(errors, name)
    assert issubclass(errors.NotFound, KeyError)
    assert issubclass(errors.ValidationError, ValueError)
    assert issubclass(errors.UnsafeFormatError, errors.ValidationError)
    assert issubclass(errors.MalformedFileError, errors.ValidationError)
    assert issubclass(errors.StorageError, OSError)
    assert issubclass(errors.MissingExtraError, ImportError)
    assert issubclass(errors.DeviceError, RuntimeError)
    assert issubclass(errors.NotSupported, NotImplementedError)
    error = errors.IntegrityError("bad chunk", tensor="w", chunk="ab")
    assert (str(error), error.tensor, error.chunk) == ("bad chunk", "w", "ab")  # type: ignore[attr-defined]
    assert str(errors.NotFound("no ref 'x'")) == "no ref 'x'"  # not quoted, as KeyError would


@pytest.mark.parametrize(
    "statement",
    [
        "import weightbase",
        "import weightbase.tensors",
        "from weightbase.tensors import TensorStore; TensorStore",
        "import weightbase.cli",
    ],
)
def test_the_core_does_not_import_optional_dependencies(statement: str) -> None:
    optional = ["torch", "transformers", "safetensors", "boto3", "botocore", "moto"]
    code = f"import sys; {statement}; print(sorted(m for m in {optional!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
