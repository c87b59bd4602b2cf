"""What the inference server tests serve (tiny models built from a config in code, a slow
predict entry point, a version that cannot be built), and the parts of the server that
need no HTTP: sizes, served names, the response cache."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("fastapi")

from tests.remote_support import serve_in_thread  # noqa: E402
from tests.tiny_models import TINY_BERT, tiny_bert_config  # noqa: E402

import weightbase  # noqa: E402
from weightbase.errors import ValidationError  # noqa: E402
from weightbase.serving.app import create_serve_app  # noqa: E402
from weightbase.serving.cache import ResponseCache, cache_key  # noqa: E402
from weightbase.serving.pool import served_names  # noqa: E402
from weightbase.serving.runnable import clear_runnables  # noqa: E402
from weightbase.serving.server_options import ServeOptions, parse_bytes  # noqa: E402
from weightbase.workspace import Workspace  # noqa: E402

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS += ["the", "a", "cat", "dog", "sat", "on", "mat", "is", "good", "bad", "very", "happy"]
WORDS += ["sad", "hello", "world", "paris", "user", "assistant", ":"]
WORDS += [f"w{i}" for i in range(TINY_BERT["vocab_size"] - len(WORDS))]
SLOW = "tests.serving.test_server_models:slow_predict"


def slow_predict(batch: list[Any]) -> list[float]:
    """Sleeps the largest first value of the batch's rows (seconds); each row's sum."""
    time.sleep(max(float(row[0]) for row in batch))
    return [float(sum(row)) for row in batch]


def _folder(tmp: Path, model: Any, name: str) -> Path:
    folder = tmp / name
    model.save_pretrained(folder)
    transformers.BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)
    return folder


def push_models(wb: Workspace, tmp: Path) -> None:
    """``encoder`` (embeddings), ``writer`` (text generation), ``slow`` (predict),
    ``broken`` (neither a Hugging Face folder nor an entry point)."""
    torch.manual_seed(0)
    encoder = transformers.BertModel(tiny_bert_config()).eval()
    wb.models.push("encoder", _folder(tmp, encoder, "encoder"))
    config = transformers.GPT2Config(
        n_embd=32, n_layer=2, n_head=4, vocab_size=len(WORDS), n_positions=128,
        bos_token_id=2, eos_token_id=3, tie_word_embeddings=False,
    )  # fmt: skip
    writer = transformers.GPT2LMHeadModel(config).eval()
    wb.models.push("writer", _folder(tmp, writer, "writer"))
    wb.models.push("slow", {"w": torch.zeros(1)}, entry_point=SLOW)
    wb.models.push("broken", {"w": torch.zeros(2)})


@contextmanager
def running_server(
    tmp: Path, refs: Sequence[str], options: ServeOptions
) -> Iterator[tuple[str, Any]]:
    """A server on loopback serving ``refs`` of a fresh workspace: its URL and engine."""
    clear_runnables()
    with weightbase.open(tmp / "home") as wb:
        push_models(wb, tmp)
        app = create_serve_app(wb, refs, options)
        with serve_in_thread(app) as url:
            yield url, app.state.engine
    clear_runnables()


def test_sizes_are_read_with_decimal_and_binary_units() -> None:
    assert parse_bytes("0") == 0
    assert parse_bytes("500M") == 500 * 10**6
    assert parse_bytes("2GiB") == 2 * 2**30
    assert parse_bytes("1.5G") == 1_500_000_000
    assert parse_bytes(1024) == 1024
    with pytest.raises(ValidationError, match="not a size"):
        parse_bytes("lots")


def test_bad_options_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        ServeOptions(batch_size=0)
    with pytest.raises(ValidationError, match="timeout_s"):
        ServeOptions(timeout_s=0)


def test_models_are_served_by_name_or_by_ref_when_two_share_a_name() -> None:
    assert served_names(["a@production", "b@1.0.0"]) == {"a": "a@production", "b": "b@1.0.0"}
    assert served_names(["a@1.0.0", "a@2.0.0"]) == {"a@1.0.0": "a@1.0.0", "a@2.0.0": "a@2.0.0"}
    with pytest.raises(ValidationError, match="twice"):
        served_names(["a@1.0.0", "a@1.0.0"])
    with pytest.raises(ValidationError, match="at least one"):
        served_names([])


def test_the_cache_counts_hits_expires_and_stays_within_its_bytes() -> None:
    now = [0.0]
    cache = ResponseCache(200, ttl_s=10, clock=lambda: now[0])
    key = cache_key("snap", "embed", ["a text"])
    assert key != cache_key("snap", "embed", ["another"])
    assert key != cache_key("other-snap", "embed", ["a text"])
    assert cache.get(key) == (False, None)
    assert cache.put(key, [[0.5, 0.25]])
    assert cache.get(key) == (True, [[0.5, 0.25]])
    assert cache.get(key)[0]
    assert cache.hits(key) == 2
    now[0] = 11.0
    assert cache.get(key) == (False, None)  # expired
    assert not cache.put("big", ["x" * 500])  # larger than the whole cache
    for index in range(10):
        cache.put(f"k{index}", [str(index) * 40])
    assert cache.size <= 200
    assert cache.get("k9")[0]
    assert not cache.get("k0")[0]


def test_a_stream_holds_back_what_could_begin_a_stop_string() -> None:
    from weightbase.serving.streaming import _held_back

    assert _held_back("hello wor", ("world",)) == 3
    assert _held_back("hello", ("world",)) == 0
    assert _held_back("a\n", ("\n\n", "xyz")) == 1
    assert _held_back("anything", ()) == 0


class _SlowWriter:
    """A generate that hands out one token, then waits for the test before the rest."""

    def __init__(self) -> None:
        import threading

        self.go_on = threading.Event()
        self.generation_config = type("Config", (), {"eos_token_id": 9})()
        self.tokenizer = self
        self.model = self
        self.device = "cpu"
        self.pad_token_id = 0

    def prompt_ids(self, prompt: str) -> list[int]:
        return [1, 2]

    def generation_options(self, params: Any) -> dict[str, Any]:
        return {"max_new_tokens": params.max_tokens}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(f" t{i}" for i in ids)

    def generate(self, *, streamer: Any, **options: Any) -> None:
        streamer.put(torch.tensor([[1, 2]]))  # the prompt
        streamer.put(torch.tensor([5]))
        assert self.go_on.wait(10), "the first token was not streamed before the end"
        streamer.put(torch.tensor([6]))
        streamer.put(torch.tensor([9]))  # end of text
        streamer.end()


def test_a_stream_gives_each_token_before_generation_ends() -> None:
    import asyncio

    from weightbase.serving.runnable_outputs import GenerationParams
    from weightbase.serving.streaming import stream_generation

    writer = _SlowWriter()

    async def read() -> list[Any]:
        pieces = stream_generation(writer, "p", GenerationParams(max_tokens=5))
        first = await asyncio.wait_for(anext(pieces), 5)
        writer.go_on.set()
        return [first] + [piece async for piece in pieces]

    pieces = asyncio.run(read())
    assert pieces[0].text == " t5"
    assert "".join(piece.text for piece in pieces) == " t5 t6"
    assert (pieces[-1].finish_reason, pieces[-1].tokens) == ("stop", 2)
