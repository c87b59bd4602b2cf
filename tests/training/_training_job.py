"""A ``Training`` run for the kill-and-resume test.

    python _training_job.py HOME CATALOG_URL EPOCHS OUT [--kill-after N] [--kill-at-step S]
                            [--kill-in-write N] [--resume]

It SIGKILLs itself right after the checkpoint of epoch N is durable, or right after
logging step S (past the last checkpoint), or while the background write of epoch N's
checkpoint is in flight (printing "in flight" first if it still was); OUT gets the
final weights as raw bytes.
"""

from __future__ import annotations

import os
import signal
import sys

import torch
from sklearn.datasets import load_digits

import weightbase
from weightbase.training import Training


def main() -> None:
    home, catalog_url, epochs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    kill_after = (
        int(sys.argv[sys.argv.index("--kill-after") + 1]) if "--kill-after" in sys.argv else None
    )
    kill_in_write = (
        int(sys.argv[sys.argv.index("--kill-in-write") + 1])
        if "--kill-in-write" in sys.argv
        else None
    )
    kill_at_step = (
        int(sys.argv[sys.argv.index("--kill-at-step") + 1])
        if "--kill-at-step" in sys.argv
        else None
    )
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    digits = load_digits()
    x = torch.tensor(digits.data[:320], dtype=torch.float32) / 16
    y = torch.tensor(digits.target[:320])
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True
    )
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with (
        weightbase.open(home, catalog_url=catalog_url) as wb,
        Training(
            wb, "kill", model=model, optimizer=optimizer, name="job", resume="--resume" in sys.argv
        ) as training,
    ):
        print(f"start epoch {training.start_epoch} run {training.run.id}", flush=True)
        for epoch in training.epochs(epochs):
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                step = training.step({"train/loss": loss})
                if step == kill_at_step:
                    # past a durable checkpoint: the background write before it has landed
                    training.flush()
                    training.run.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
            training.end_epoch({"epoch/loss": loss})
            if kill_in_write is not None and epoch + 1 == kill_in_write:
                if training.checkpoints.writing:
                    print("in flight", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            if kill_after is not None and epoch + 1 == kill_after:
                training.flush()
                training.run.flush()
                os.kill(os.getpid(), signal.SIGKILL)
    with open(out, "wb") as handle:
        for value in model.state_dict().values():
            handle.write(value.numpy().tobytes())


if __name__ == "__main__":
    main()
