"""``wb.datasets.list``: kind and format filters, and the error naming the allowed values."""

from __future__ import annotations

import numpy as np
import pytest

from weightbase.datasets import from_numpy
from weightbase.datasets.content import DatasetFormat, DatasetKind
from weightbase.errors import ValidationError
from weightbase.workspace import Workspace


def test_kind_and_format_filter_the_listing(workspace: Workspace) -> None:
    x = np.arange(12, dtype=np.float64).reshape(6, 2)
    workspace.datasets.register("labelled", from_numpy(x, np.arange(6) % 2))
    workspace.datasets.register("unlabelled", from_numpy(x))
    assert [d.name for d in workspace.datasets.list(kind="supervised")] == ["labelled"]
    assert [d.name for d in workspace.datasets.list(kind=DatasetKind.UNSUPERVISED)] == [
        "unlabelled"
    ]
    assert [d.name for d in workspace.datasets.list(format="tensor")] == ["labelled", "unlabelled"]
    assert workspace.datasets.list(format="image").items == ()


@pytest.mark.parametrize(("what", "choices"), [("kind", DatasetKind), ("format", DatasetFormat)])
def test_an_unknown_kind_or_format_names_the_allowed_values(
    workspace: Workspace, what: str, choices: type[DatasetKind] | type[DatasetFormat]
) -> None:
    with pytest.raises(ValidationError, match=f"unknown dataset {what} 'bad'") as raised:
        workspace.datasets.list(**{what: "bad"})
    allowed = [choice.value for choice in choices]
    assert raised.value.context == {what: "bad", "allowed": allowed}
    for value in allowed:
        assert value in str(raised.value)
