"""The models ``python -m benchmarks serving`` serves, built in code (nothing downloaded).

``BenchMLP`` is the entry point the served MLP names (``benchmarks.serving_models:BenchMLP``),
so the servers run with the repository root on ``PYTHONPATH``; ``gpt2_folder`` writes
a small GPT-2 with a word-level tokenizer for the prompt-prefix rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

__all__ = [
    "GPT2_LAYERS",
    "GPT2_WIDTH",
    "MLP_ARGS",
    "MLP_ENTRY_POINT",
    "PROMPT_WORDS",
    "BenchMLP",
    "bench_mlp",
    "gpt2_folder",
]

MLP_ENTRY_POINT = "benchmarks.serving_models:BenchMLP"
#: A small MLP: one request is a row of 64 floats, the answer 8.
MLP_ARGS = {"inputs": 64, "hidden": 256, "outputs": 8}

#: The GPT-2's size: small, yet a long prompt's forward pass costs more than an HTTP request.
GPT2_LAYERS, GPT2_WIDTH = 6, 256

#: The GPT-2's vocabulary (after its special tokens): prompts are made of these words.
PROMPT_WORDS = tuple(
    f"{stem}{suffix}"
    for stem in (
        "model", "weight", "tensor", "layer", "token", "server", "batch", "cache",
        "prompt", "answer", "store", "chunk", "train", "serve", "query", "vector",
    )
    for suffix in ("", "s", "ed", "ing", "er", "al", "ly", "ion")
)  # fmt: skip
_SPECIAL = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[CLS]", "[SEP]", "[MASK]")


class BenchMLP(torch.nn.Module):
    """Two hidden layers with ReLU, built from JSON init arguments."""

    def __init__(self, inputs: int, hidden: int, outputs: int) -> None:
        super().__init__()
        self.first = torch.nn.Linear(inputs, hidden)
        self.second = torch.nn.Linear(hidden, hidden)
        self.out = torch.nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden: torch.Tensor = torch.relu(self.second(torch.relu(self.first(x))))
        out: torch.Tensor = self.out(hidden)
        return out


def bench_mlp(seed: int = 0) -> BenchMLP:
    """The benchmark's MLP with fixed random weights, in eval mode."""
    torch.manual_seed(seed)
    return BenchMLP(**MLP_ARGS).eval()


def gpt2_folder(folder: Path, *, seed: int = 0) -> Path:
    """A small GPT-2 with random weights (untied, 1,024 positions) and its word-level
    tokenizer, saved in ``folder`` as a Hugging Face folder."""
    import transformers

    vocab = {word: index for index, word in enumerate((*_SPECIAL, *PROMPT_WORDS))}
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        n_embd=GPT2_WIDTH,
        n_layer=GPT2_LAYERS,
        n_head=8,
        vocab_size=len(vocab),
        n_positions=1024,
        bos_token_id=vocab["[BOS]"],
        eos_token_id=vocab["[EOS]"],
        # untied: a small random model with tied embeddings repeats the prompt's last token
        tie_word_embeddings=False,
    )
    model: Any = transformers.GPT2LMHeadModel(config)
    model.eval()
    model.save_pretrained(folder)
    transformers.BertTokenizer(vocab=vocab).save_pretrained(folder)
    return folder
