"""A small training job for the resume test: digits, an MLP, AdamW, a scheduler, shuffling.

    python _resume_job.py STORE OUT EPOCHS [--kill-after N] [--resume]

Checkpoints at every epoch's end; with ``--kill-after N`` it SIGKILLs itself
right after the checkpoint of epoch N; with ``--resume`` it starts from the
latest checkpoint. The final weights go to OUT as raw bytes per tensor.
"""

from __future__ import annotations

import os
import random
import signal
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits

from weightbase.tensors import TensorStore
from weightbase.training import CheckpointManager


def main() -> None:
    store_path, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kill_after = (
        int(sys.argv[sys.argv.index("--kill-after") + 1]) if "--kill-after" in sys.argv else None
    )
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    digits = load_digits()
    x = torch.tensor(digits.data[:512], dtype=torch.float32) / 16
    y = torch.tensor(digits.target[:512])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True
    )
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(32, 10)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    checkpoints = CheckpointManager(TensorStore.open(store_path), "resume-job", keep_last=2)
    start, step = 0, 0
    if "--resume" in sys.argv:
        progress = checkpoints.load(model=model, optimizer=optimizer, scheduler=scheduler)
        start, step = progress.epoch or 0, progress.step
    print(f"start epoch {start} step {step}", flush=True)
    for epoch in range(start, epochs):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            step += 1
            # some host-side randomness too, as augmentation code would use
            random.random()
            np.random.rand()
        scheduler.step()
        checkpoints.save(
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            step=step,
            epoch=epoch + 1,
            metrics={"loss": float(loss)},
        )
        if kill_after is not None and epoch + 1 == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    with open(out, "wb") as handle:
        for name, value in model.state_dict().items():
            handle.write(name.encode() + b"\0" + value.numpy().tobytes())
        for group in optimizer.state_dict()["state"].values():
            for value in group.values():
                handle.write(value.numpy().tobytes())


if __name__ == "__main__":
    main()
