"""weightbase.sample_models: the demo's digits MLP, rebuilt from its entry point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import weightbase  # noqa: E402
from weightbase.sample_models import DIGITS_MLP, DigitsMLP  # noqa: E402
from weightbase.serving.runnable import clear_runnables, load_runnable  # noqa: E402

ARGS = {"inputs": 64, "hidden": 16, "outputs": 10}


def test_a_pushed_digits_mlp_is_rebuilt_from_its_entry_point(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DigitsMLP(**ARGS).eval()
    images = np.random.default_rng(0).random((5, 64), dtype=np.float32)
    expected = model(torch.from_numpy(images)).detach().numpy()
    clear_runnables()
    try:
        with weightbase.open(tmp_path) as wb:
            wb.models.push("digits", model, entry_point=DIGITS_MLP, init_args=ARGS)
            runnable = load_runnable(wb, "digits@latest")
            outputs = np.stack(runnable.predict(list(images)))
    finally:
        clear_runnables()
    assert runnable.task == "predict"
    assert isinstance(runnable.module, DigitsMLP)  # type: ignore[attr-defined]
    np.testing.assert_allclose(outputs, expected, rtol=1e-6, atol=1e-6)
    assert outputs.shape == (5, 10)
