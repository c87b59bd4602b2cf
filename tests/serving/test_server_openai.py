"""``weightbase serve`` driven by the ``openai`` Python client, unchanged: models,
embeddings, completions and chat, streamed and not, and its typed errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from tests.serving.test_server_models import running_server  # noqa: E402

from weightbase.serving.openai_api import chat_prompt  # noqa: E402
from weightbase.serving.server_options import ServeOptions  # noqa: E402

REFS = ["encoder@latest", "writer@latest"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    with running_server(tmp_path_factory.mktemp("openai"), REFS, ServeOptions()) as running:
        yield running


@pytest.fixture
def client(server: tuple[str, Any]) -> Iterator[Any]:
    with openai.OpenAI(base_url=f"{server[0]}/v1", api_key="unused", max_retries=0) as client:
        yield client


def test_models_are_listed(client: Any) -> None:
    assert {model.id for model in client.models.list()} == {"encoder", "writer"}


def test_embeddings_as_base64_and_as_floats(client: Any) -> None:
    texts = ["the cat sat on the mat", "hello world"]
    default = client.embeddings.create(model="encoder", input=texts)  # base64 on the wire
    floats = client.embeddings.create(model="encoder", input=texts, encoding_format="float")
    assert [item.index for item in default.data] == [0, 1]
    assert len(default.data[0].embedding) == 32
    np.testing.assert_allclose(
        [item.embedding for item in default.data], [item.embedding for item in floats.data],
        rtol=1e-6,
    )  # fmt: skip
    assert default.usage.prompt_tokens > 0


def test_completions_continue_a_prompt(client: Any) -> None:
    completion = client.completions.create(model="writer", prompt="the cat", max_tokens=4)
    [choice] = completion.choices
    assert isinstance(choice.text, str)
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage.completion_tokens <= 4
    assert completion.model == "writer"


def test_streamed_completions_give_the_same_text(client: Any) -> None:
    whole = client.completions.create(model="writer", prompt="hello", max_tokens=5)
    stream = client.completions.create(model="writer", prompt="hello", max_tokens=5, stream=True)
    chunks = list(stream)
    assert "".join(chunk.choices[0].text for chunk in chunks) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_chat_streams_by_server_sent_events(client: Any) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello world"},
    ]
    whole = client.chat.completions.create(model="writer", messages=messages, max_tokens=5)
    assert whole.choices[0].message.role == "assistant"
    stream = client.chat.completions.create(
        model="writer", messages=messages, max_tokens=5, stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_a_chat_prompt_without_a_template_joins_role_and_content() -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert chat_prompt(None, messages) == "system: be brief\nuser: hi\nassistant:"

    class Templated:
        chat_template = "{{ messages }}"

        def apply_chat_template(self, messages: Any, **options: Any) -> str:
            assert options == {"tokenize": False, "add_generation_prompt": True}
            return "<templated>"

    assert chat_prompt(Templated(), messages) == "<templated>"


def test_errors_are_the_clients_typed_errors(client: Any) -> None:
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope", input="a")
    with pytest.raises(openai.UnprocessableEntityError, match="messages"):
        client.chat.completions.create(model="writer", messages=[])
    with pytest.raises(openai.UnprocessableEntityError, match="temperature"):
        client.completions.create(model="writer", prompt="a", temperature=-1)
    with pytest.raises(openai.UnprocessableEntityError, match="serves text-generation"):
        client.embeddings.create(model="writer", input="a")


def test_sampling_without_a_seed_is_never_cached(server: tuple[str, Any], client: Any) -> None:
    engine = server[1]

    def counts() -> tuple[float, float]:
        hits = engine.metrics.sample("weightbase_serve_cache_hits_total", model="writer")
        misses = engine.metrics.sample("weightbase_serve_cache_misses_total", model="writer")
        return hits, misses

    before = counts()
    for _ in range(2):
        client.completions.create(model="writer", prompt="dog", max_tokens=3, temperature=0.8)
    assert counts() == before  # neither a hit nor a miss: not cacheable
    for _ in range(2):
        client.completions.create(
            model="writer", prompt="dog", max_tokens=3, temperature=0.8, seed=7
        )
    assert counts() == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"max_tokens": 1.5}, "'max_tokens' must be an integer"),
        ({"max_tokens": True}, "'max_tokens' must be a number"),
        ({"max_completion_tokens": "3"}, "'max_completion_tokens' must be a number"),
        ({"temperature": float("inf")}, "'temperature' must be a finite number"),
        ({"top_p": 0}, "top_p"),
        ({"n": 2}, "'n' must be 1"),
        ({"stop": [1]}, "'stop'"),
    ],
)
def test_bad_sampling_fields_are_422_naming_them(
    server: tuple[str, Any], fields: dict[str, Any], named: str
) -> None:
    body = {"model": "writer", "prompt": "the cat", **fields}
    # json.dumps writes inf as Infinity, which httpx's json= refuses to send
    headers = {"Content-Type": "application/json"}
    response = httpx.post(f"{server[0]}/v1/completions", content=json.dumps(body), headers=headers)
    assert response.status_code == 422, response.text
    assert named in response.json()["error"]["message"]


def test_max_completion_tokens_bounds_the_completion(client: Any) -> None:
    completion = client.chat.completions.create(
        model="writer", messages=[{"role": "user", "content": "hello"}], max_completion_tokens=2
    )
    assert completion.usage.completion_tokens <= 2


def test_each_seed_does_not_leave_a_batcher_behind(server: tuple[str, Any], client: Any) -> None:
    engine = server[1]
    for seed in range(80):
        client.completions.create(
            model="writer", prompt="a", max_tokens=1, temperature=0.5, seed=seed
        )
    assert len(engine._batchers) <= 64


def test_a_stream_arrives_token_by_token_and_ends_at_a_stop_string(client: Any) -> None:
    whole = client.completions.create(model="writer", prompt="the dog", max_tokens=8)
    words = whole.choices[0].text.split()
    assert len(words) >= 3
    stream = client.completions.create(model="writer", prompt="the dog", max_tokens=8, stream=True)
    pieces = [chunk.choices[0].text for chunk in stream if chunk.choices[0].text]
    assert len(pieces) >= 3  # one per token or so, not one at the end
    stop = words[2]
    cut = client.completions.create(model="writer", prompt="the dog", max_tokens=8, stop=stop)
    chunks = list(
        client.completions.create(
            model="writer", prompt="the dog", max_tokens=8, stop=stop, stream=True
        )
    )
    streamed = "".join(chunk.choices[0].text for chunk in chunks)
    assert streamed == cut.choices[0].text
    assert stop not in streamed
    assert chunks[-1].choices[0].finish_reason == cut.choices[0].finish_reason == "stop"


def test_a_stream_is_counted_in_the_tokens_per_second(server: tuple[str, Any], client: Any) -> None:
    engine = server[1]
    before = engine.metrics.sample("weightbase_serve_generated_tokens_total", model="writer")
    list(client.completions.create(model="writer", prompt="a cat", max_tokens=4, stream=True))
    after = engine.metrics.sample("weightbase_serve_generated_tokens_total", model="writer")
    assert after > before
    assert engine._in_flight["writer"] == 0  # released when the stream ended
