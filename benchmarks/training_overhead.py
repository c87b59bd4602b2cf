"""What the training callbacks cost a training step: with and without, checkpointing each epoch.

The same MLP (``width`` wide, about 2.1M parameters at 1024; AdamW, batch 64,
random data in memory) is trained for ``epochs`` epochs of ``steps_per_epoch``
steps three ways (a plain loop with ``Training``, the Hugging Face ``Trainer``,
a Lightning ``Trainer``), each with and without weightbase: the loss logged
every step and a checkpoint (model, optimizer, scheduler, RNGs) at every
epoch's end, on a SQLite catalog and a local store in a temporary folder.
With and without runs alternate, and each kind's overhead is the median of
the paired ratios, so a slow moment on a shared machine hits both sides.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["measure_callback_overhead", "measure_checkpoint_stall"]

_KINDS = ("plain", "hf", "lightning")


def measure_callback_overhead(
    *,
    steps_per_epoch: int = 200,
    epochs: int = 2,
    repeats: int = 5,
    width: int = 1024,
    batch_size: int = 64,
    kinds: tuple[str, ...] = _KINDS,
    threads: int | None = 1,
    workdir: Path | None = None,
) -> dict[str, float]:
    """Overhead of the callbacks in % of training time, and what it is made of.

    Returns ``callback_overhead_pct`` (the plain loop's ``Training``: time in
    its ``step`` and ``end_epoch`` calls, checkpoints included, over the time
    of everything else in the loop; ``callback_paired_overhead_pct`` is the
    same loop timed whole with and without it, which the machine's noise can
    swamp; the run's one-off start and end are ``plain_run_fixed_s``),
    ``hf_overhead_pct``, ``lightning_overhead_pct``, and per kind
    ``<kind>_step_ms`` (a step without weightbase) and ``<kind>_checkpoint_s``
    (median seconds one checkpoint took), plus ``parameters`` and
    ``steps_per_epoch``. A kind left out of ``kinds`` (or whose framework is
    not installed) is missing from the result.
    """
    import torch

    if threads is not None:  # a fixed number: stable figures on a shared machine
        torch.set_num_threads(threads)
    result: dict[str, float] = {"steps_per_epoch": float(steps_per_epoch)}
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        import weightbase

        wb = weightbase.open(
            Path(folder) / "home", catalog_url=f"sqlite:///{Path(folder) / 'catalog.db'}"
        )
        try:
            data = _data(steps_per_epoch * batch_size, width)
            runners = _runners(wb, data, Path(folder), steps_per_epoch, epochs, batch_size, width)
            for kind in kinds:
                runner = runners.get(kind)
                if runner is None:
                    continue
                runner(False)  # warm up: imports, allocator, first-call costs
                ratios, bare, checkpoints = [], [], []
                for _ in range(repeats):
                    without, _ = runner(False)
                    with_callback, checkpoint_s = runner(True)
                    ratios.append(with_callback / without)
                    bare.append(without)
                    checkpoints.append(checkpoint_s / epochs)
                key = "callback" if kind == "plain" else kind
                result[f"{key}_overhead_pct"] = round((statistics.median(ratios) - 1) * 100, 2)
                result[f"{kind}_step_ms"] = round(
                    statistics.median(bare) / (epochs * steps_per_epoch) * 1000, 3
                )
                result[f"{kind}_checkpoint_s"] = round(statistics.median(checkpoints), 4)
                if kind == "plain" and _FIXED:
                    result["plain_run_fixed_s"] = round(statistics.median(_FIXED), 4)
                    # timed inside the calls themselves: immune to the machine's
                    # noise, which swamps a difference of two whole runs here
                    result["callback_paired_overhead_pct"] = result["callback_overhead_pct"]
                    result["callback_overhead_pct"] = round(statistics.median(_INSIDE) * 100, 2)
                    _FIXED.clear()
                    _INSIDE.clear()
            result["parameters"] = float(sum(p.numel() for p in _model(width).parameters()))
        finally:
            wb.close()
    return result


# -- the workload ----------------------------------------------------------------------------


def _model(width: int) -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, 10),
    )


def _data(samples: int, width: int) -> tuple[Any, Any]:
    import torch

    generator = torch.Generator().manual_seed(1)
    return (
        torch.randn(samples, width, generator=generator),
        torch.randint(0, 10, (samples,), generator=generator),
    )


def _optimizer(model: Any, epochs: int) -> tuple[Any, Any]:
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.9)


Runner = Callable[[bool], tuple[float, float]]

# seconds the plain loop's run took to start and end, one entry per tracked run
_FIXED: list[float] = []
# the plain loop's time in Training.step/end_epoch over its time in everything else
_INSIDE: list[float] = []


def _runners(
    wb: Any,
    data: tuple[Any, Any],
    folder: Path,
    steps_per_epoch: int,
    epochs: int,
    batch_size: int,
    width: int,
) -> dict[str, Runner]:
    """Per kind: ``run(tracked) -> (seconds, checkpoint seconds)``, setup untimed."""
    runners: dict[str, Runner] = {
        "plain": lambda tracked: _plain(wb, data, epochs, batch_size, width, tracked)
    }
    import importlib.util

    # the Trainer needs accelerate as well as transformers
    if all(importlib.util.find_spec(name) for name in ("accelerate", "transformers")):
        runners["hf"] = lambda tracked: _hf(wb, data, folder, epochs, batch_size, width, tracked)
    if importlib.util.find_spec("lightning") is not None:
        runners["lightning"] = lambda tracked: _lightning(
            wb, data, epochs, batch_size, width, tracked
        )
    return runners


def _plain(
    wb: Any, data: tuple[Any, Any], epochs: int, batch_size: int, width: int, tracked: bool
) -> tuple[float, float]:
    import torch

    from weightbase.training import Training

    model = _model(width)
    optimizer, scheduler = _optimizer(model, epochs)
    x, y = data
    batches = [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]

    inside = [0.0]  # seconds spent in weightbase's calls

    def train(training: Training | None) -> None:
        for _epoch in training.epochs(epochs) if training is not None else range(epochs):
            for xb, yb in batches:
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                if training is not None:
                    called = time.perf_counter()
                    training.step({"train_loss": loss.detach()})
                    inside[0] += time.perf_counter() - called
            scheduler.step()
            if training is not None:
                called = time.perf_counter()
                training.end_epoch()
                inside[0] += time.perf_counter() - called

    if not tracked:
        started = time.perf_counter()
        train(None)
        return time.perf_counter() - started, 0.0
    # the steps and their checkpoints, timed inside the block: starting and
    # ending the run are one-off costs, reported apart (plain_run_fixed_s)
    opened = time.perf_counter()
    with Training(
        wb, "overhead-plain", model=model, optimizer=optimizer, scheduler=scheduler
    ) as training:
        started = time.perf_counter()
        train(training)
        elapsed = time.perf_counter() - started
    _FIXED.append(time.perf_counter() - opened - elapsed)
    _INSIDE.append(inside[0] / (elapsed - inside[0]))
    return elapsed, training.checkpoint_seconds


def _hf(
    wb: Any,
    data: tuple[Any, Any],
    folder: Path,
    epochs: int,
    batch_size: int,
    width: int,
    tracked: bool,
) -> tuple[float, float]:
    import torch
    import transformers
    from transformers import trainer as trainer_module

    from weightbase.training import WeightbaseCallback

    # a `datasets` folder on sys.path (a test suite's) must not pass for the package
    trainer_module.is_datasets_available = lambda: False  # type: ignore[attr-defined]

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = _model(width)

        def forward(self, x: Any, labels: Any) -> dict[str, Any]:
            logits = self.net(x)
            return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}

    class Rows(torch.utils.data.Dataset[dict[str, Any]]):
        def __len__(self) -> int:
            return len(data[0])

        def __getitem__(self, index: int) -> dict[str, Any]:
            return {"x": data[0][index], "labels": data[1][index]}

    callback = WeightbaseCallback(wb, "overhead-hf", log_arguments=True) if tracked else None
    trainer = transformers.Trainer(
        model=Classifier(),
        args=transformers.TrainingArguments(
            output_dir=str(folder / "hf-output"),
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=1e-4,
            lr_scheduler_type="linear",
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            log_level="error",
            dataloader_drop_last=True,
        ),
        train_dataset=Rows(),
        callbacks=[callback] if callback is not None else [],
    )
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # no stdout per step
    started = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - started
    training = callback.training if callback is not None else None
    return elapsed, training.checkpoint_seconds if training is not None else 0.0


def _lightning(
    wb: Any, data: tuple[Any, Any], epochs: int, batch_size: int, width: int, tracked: bool
) -> tuple[float, float]:
    import warnings

    import lightning.pytorch as pl
    import torch

    from weightbase.training import WeightbaseLightningCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _model(width)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            optimizer, scheduler = _optimizer(self, epochs)
            return {"optimizer": optimizer, "lr_scheduler": scheduler}

    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(*data), batch_size=batch_size, drop_last=True
    )
    callback = WeightbaseLightningCallback(wb, "overhead-lightning") if tracked else None
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        log_every_n_steps=1,
        callbacks=[callback] if callback is not None else [],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on loaders and workers
        started = time.perf_counter()
        trainer.fit(Module(), loader)
        elapsed = time.perf_counter() - started
    training = callback.training if callback is not None else None
    return elapsed, training.checkpoint_seconds if training is not None else 0.0


if __name__ == "__main__":
    import json
    import sys

    quick = "--quick" in sys.argv
    figures = measure_callback_overhead(
        steps_per_epoch=50 if quick else 200, repeats=2 if quick else 5
    )
    print(json.dumps(figures, indent=2))


def measure_checkpoint_stall(workdir: Path, *, rounds: int = 5, seed: int = 0) -> dict[str, float]:
    """How long a checkpoint blocks the loop, against ``torch.save`` + fsync of the same state,
    and what registering a checkpoint stores: MiniLM (all-MiniLM-L6-v2) with AdamW state.

    ``Training`` checkpoints in the background: the loop is blocked while the state is
    copied into host buffers (the write of the checkpoint before is waited for between
    rounds, untimed, as training steps would cover it). ``torch.save`` writes model and
    optimizer state dicts to a file on the same disk, then fsyncs it. Then the latest
    checkpoint is registered: ``register_new_bytes`` is the growth of the store's chunks.
    """
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    import transformers
    from transformers import AutoModel

    import weightbase
    from benchmarks.timing import fsync_path
    from weightbase.samples import minilm_folder
    from weightbase.training import Training

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.manual_seed(seed)
    model = AutoModel.from_pretrained(minilm_folder())
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    batch = torch.randint(0, 1000, (4, 32))

    def train_step() -> None:
        optimizer.zero_grad()
        model(input_ids=batch).last_hidden_state.pow(2).mean().backward()
        optimizer.step()

    stalls: list[float] = []
    saves: list[float] = []
    home = Path(tempfile.mkdtemp(prefix="wb-stall-", dir=workdir))
    target = home / "state.pt"
    with (
        weightbase.open(home / "wb", catalog_url=f"sqlite:///{home / 'catalog.db'}") as wb,
        Training(wb, "stall", model=model, optimizer=optimizer, keep_last=2) as training,
    ):
        for round_ in range(rounds + 1):  # the first round warms both up; it is not counted
            train_step()
            training.step()
            started = time.perf_counter()
            training.checkpoint({"loss": float(round_)}, epoch=round_ + 1)
            blocked = time.perf_counter() - started
            training.flush()
            started = time.perf_counter()
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, target)
            fsync_path(target)
            saved = time.perf_counter() - started
            target.unlink()
            if round_:
                stalls.append(blocked)
                saves.append(saved)

        def chunk_bytes() -> int:
            return sum(info.size for info in wb.store.objects.list("chunks/"))

        before = chunk_bytes()
        started = time.perf_counter()
        training.register("stall-minilm", checkpoint="latest")
        register_s = time.perf_counter() - started
        new_bytes = chunk_bytes() - before
    stall, save = statistics.median(stalls), statistics.median(saves)
    return {
        "checkpoint_stall_vs_torch_save": stall / save,
        "register_new_bytes": float(new_bytes),
        "checkpoint_stall_s": stall,
        "torch_save_fsync_s": save,
        "register_s": register_s,
        "rounds": float(rounds),
    }
