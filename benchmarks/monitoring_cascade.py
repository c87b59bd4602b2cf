"""Cascades and ensembles on real data: scikit-learn's digits through ``wb.reactors``.

Three digits MLPs (small, medium, large) are trained with torch on the train split and
pushed with their entry point; a cascade small → large takes the threshold that, on the
validation split, calls the large model least while keeping accuracy within 1 point of
the large model's; on the test split the served reactors report the share of inputs the
cascade sent to the large model (from its own operation log), the accuracy gap in points,
and each member's and a weighted-average and majority-vote ensemble's accuracy.
``measure(quick)`` returns those figures; deterministic (seeded).

    python -m benchmarks.monitoring_cascade [--quick]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["measure"]

#: Hidden units of each model: the small one is about logistic-regression sized.
HIDDEN = {"small": 8, "medium": 32, "large": 256}
#: How far below the large model's accuracy the cascade may fall on validation (points).
TOLERANCE_POINTS = 1.0
SEED = 0


def _splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Digits scaled to 0..1, split 60/20/20 (train/validation/test), stratified, seeded."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    inputs = (digits.data / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    x_train, x_rest, y_train, y_rest = train_test_split(
        inputs, labels, test_size=0.4, random_state=SEED, stratify=labels
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=SEED, stratify=y_rest
    )
    return {"train": (x_train, y_train), "validation": (x_val, y_val), "test": (x_test, y_test)}


def _train(hidden: int, inputs: np.ndarray, labels: np.ndarray, epochs: int, seed: int) -> Any:
    """A ``DigitsMLP`` trained full-batch with Adam; in eval mode."""
    import torch

    from weightbase.sample_models import DigitsMLP

    torch.manual_seed(seed)
    model = DigitsMLP(hidden=hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
    x, y = torch.as_tensor(inputs), torch.as_tensor(labels)
    model.train()
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    return model.eval()


def choose_threshold(
    confidence: np.ndarray, small_right: np.ndarray, large_right: np.ndarray
) -> tuple[float, float, float]:
    """The threshold that sends the fewest inputs to the large model while the cascade's
    accuracy stays within ``TOLERANCE_POINTS`` of the large model's: ``(threshold, share
    sent on, cascade accuracy)`` on these (validation) inputs.

    A cascade's threshold is at most 1: where only sending every input on would do and some
    confidence is exactly 1.0, the threshold is 1.0 and those inputs stay with the small
    model; the share and accuracy returned are always those of the threshold returned."""
    target = large_right.mean() - TOLERANCE_POINTS / 100
    # candidates: every confidence seen (inputs under it escalate), and above all of them
    candidates = np.unique(np.concatenate([confidence, [np.nextafter(1.0, 2.0)]]))
    best: tuple[float, float, float] | None = None
    for threshold in candidates:  # ascending: the escalated share only grows
        escalate = confidence < threshold
        accuracy = float(np.where(escalate, large_right, small_right).mean())
        if accuracy >= target - 1e-12:
            kept = min(float(threshold), 1.0)
            escalate = confidence < kept
            accuracy = float(np.where(escalate, large_right, small_right).mean())
            best = (kept, float(escalate.mean()), accuracy)
            break
    assert best is not None  # the last candidate escalates everything: the large model's
    return best


def measure(quick: bool = False) -> dict[str, Any]:
    """Train, push, build the reactors, and measure on the test split."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny full-batch steps: a second thread costs more than it gives
    try:
        return _measure(quick)
    finally:
        torch.set_num_threads(threads)


def _measure(quick: bool) -> dict[str, Any]:
    import weightbase
    from weightbase.sample_models import DIGITS_MLP
    from weightbase.serving.runnable import clear_runnables, load_runnable

    epochs = 150 if quick else 300
    splits = _splits()
    x_train, y_train = splits["train"]
    x_val, y_val = splits["validation"]
    x_test, y_test = splits["test"]
    started = time.perf_counter()
    models = {
        name: _train(hidden, x_train, y_train, epochs, SEED + index)
        for index, (name, hidden) in enumerate(HIDDEN.items())
    }
    train_seconds = time.perf_counter() - started
    clear_runnables()
    with tempfile.TemporaryDirectory() as home, weightbase.open(Path(home)) as wb:
        refs = {
            name: wb.models.push(
                f"digits-{name}", model, entry_point=DIGITS_MLP, init_args={"hidden": HIDDEN[name]}
            ).ref
            for name, model in models.items()
        }

        def probs(name: str, rows: np.ndarray) -> np.ndarray:
            from scipy.special import softmax

            logits = np.stack(load_runnable(wb, refs[name]).predict(list(rows)))
            return np.asarray(softmax(logits.astype(np.float64), axis=1))

        small_val, large_val = probs("small", x_val), probs("large", x_val)
        threshold, val_share, val_accuracy = choose_threshold(
            small_val.max(axis=1),
            small_val.argmax(axis=1) == y_val,
            large_val.argmax(axis=1) == y_val,
        )
        wb.reactors.create(
            "digits-cascade",
            strategy="cascade",
            threshold=threshold,
            members=[{"ref": refs["small"], "priority": 0}, {"ref": refs["large"], "priority": 1}],
        )
        every = [refs[name] for name in HIDDEN]
        wb.reactors.create("digits-average", members=every)
        wb.reactors.create("digits-vote", strategy="majority_vote", members=every)

        accuracy = {
            name: float(np.mean(probs(name, x_test).argmax(axis=1) == y_test)) for name in HIDDEN
        }
        seconds: dict[str, float] = {}
        for reactor, key in (
            ("digits-cascade", "cascade"),
            ("digits-average", "weighted_average"),
            ("digits-vote", "majority_vote"),
        ):
            runnable = load_runnable(wb, f"reactor:{reactor}")
            began = time.perf_counter()
            answer = np.stack(runnable.predict(list(x_test)))
            seconds[key] = time.perf_counter() - began
            accuracy[key] = float(np.mean(answer.argmax(axis=1) == y_test))
            runnable.log.flush()  # type: ignore[attr-defined]
        operations = wb.reactors.operations("digits-cascade")
        sent = sum(
            op.members[refs["large"]].rows for op in operations if refs["large"] in op.members
        )
        answered = sum(op.batch_size for op in operations)
    clear_runnables()
    return {
        "cascade_large_model_fraction": sent / answered,
        "cascade_accuracy_gap": (accuracy["large"] - accuracy["cascade"]) * 100,
        "details": {
            "threshold": threshold,
            "validation_large_model_fraction": val_share,
            "validation_cascade_accuracy": val_accuracy,
            "validation_large_accuracy": float(np.mean(large_val.argmax(axis=1) == y_val)),
            "test_accuracy": accuracy,
            "test_inputs": len(y_test),
            "hidden_units": HIDDEN,
            "epochs": epochs,
            "train_seconds": train_seconds,
            "reactor_seconds": seconds,
            "quick": quick,
        },
    }


if __name__ == "__main__":
    print(json.dumps(measure(quick="--quick" in sys.argv[1:]), indent=2))
