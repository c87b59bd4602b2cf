"""Hugging Face folders built by ``load_runnable`` for each task: tiny models from a config
in code, pushed as folders with their tokenizer, embedded and through a remote workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.conftest import remote_variants  # noqa: E402
from tests.tiny_models import TINY_BERT, tiny_bert_config  # noqa: E402

from weightbase.errors import ValidationError  # noqa: E402
from weightbase.serving.runnable import (  # noqa: E402
    GenerationParams,
    clear_runnables,
    load_runnable,
)
from weightbase.workspace import Workspace  # noqa: E402

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS += ["the", "a", "cat", "dog", "sat", "on", "mat", "is", "good", "bad", "very", "happy"]
WORDS += ["sad", "hello", "world", "paris"]
WORDS += [f"w{i}" for i in range(TINY_BERT["vocab_size"] - len(WORDS))]
LABELS = {0: "negative", 1: "positive"}
TAGS = {0: "O", 1: "B-LOC", 2: "I-LOC"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def wb(remote_or_embedded: Workspace) -> Any:
    clear_runnables()
    yield remote_or_embedded
    clear_runnables()


def _tokenizer() -> Any:
    return transformers.BertTokenizer(vocab={word: i for i, word in enumerate(WORDS)})


def _folder(tmp_path: Path, model: Any, name: str) -> Path:
    folder = tmp_path / name
    model.save_pretrained(folder)
    _tokenizer().save_pretrained(folder)
    return folder


def _bert(kind: str, **overrides: Any) -> Any:
    torch.manual_seed(0)
    return getattr(transformers, kind)(tiny_bert_config(**overrides)).eval()


def _gpt2(*, tied: bool = False) -> Any:
    # untied: a random tiny model with tied embeddings greedily repeats the prompt's last token
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_embd=32, n_layer=2, n_head=4, vocab_size=len(WORDS), n_positions=64,
        bos_token_id=2, eos_token_id=3, tie_word_embeddings=tied,
    )  # fmt: skip
    return transformers.GPT2LMHeadModel(config).eval()


def test_a_bare_encoder_serves_mean_pooled_normalised_embeddings(wb: Any, tmp_path: Path) -> None:
    model = _bert("BertModel")
    wb.models.push("encoder", _folder(tmp_path, model, "encoder"))
    runnable = load_runnable(wb, "encoder@latest")
    assert runnable.task == "embeddings"
    texts = ["the cat sat on the mat", "hello world"]
    embeddings = runnable.embed(texts)
    assert embeddings.shape == (2, TINY_BERT["hidden_size"])
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)
    encoded = _tokenizer()(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1)
    np.testing.assert_allclose(embeddings, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.stack(runnable.predict(texts)), embeddings)


def test_a_model_stored_in_bfloat16_is_served_in_bfloat16(wb: Any, tmp_path: Path) -> None:
    model = _bert("BertModel").to(torch.bfloat16)
    wb.models.push("half", _folder(tmp_path, model, "half"))
    runnable = load_runnable(wb, "half@latest")
    assert {p.dtype for p in runnable.model.parameters()} == {torch.bfloat16}
    assert runnable.embed(["the cat"]).dtype == np.float32


def test_a_sequence_classifier_classifies(wb: Any, tmp_path: Path) -> None:
    model = _bert("BertForSequenceClassification", num_labels=2, id2label=LABELS)
    wb.models.push("sentiment", _folder(tmp_path, model, "sentiment"))
    runnable = load_runnable(wb, "sentiment@latest")
    assert runnable.task == "text-classification"
    results = runnable.classify(["the cat is happy", "the dog is sad"])
    encoded = _tokenizer()(
        ["the cat is happy", "the dog is sad"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        expected = torch.softmax(model(**encoded).logits, dim=-1).numpy()
    for result, row in zip(results, expected, strict=True):
        assert result.label == LABELS[int(row.argmax())]
        assert result.score == pytest.approx(float(row.max()), abs=1e-5)
        assert set(result.scores) == {"negative", "positive"}
        assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_a_token_classifier_tags_each_token_with_offsets(wb: Any, tmp_path: Path) -> None:
    model = _bert("BertForTokenClassification", num_labels=3, id2label=TAGS)
    wb.models.push("places", _folder(tmp_path, model, "places"))
    runnable = load_runnable(wb, "places@latest")
    assert runnable.task == "token-classification"
    [tags] = runnable.tag(["hello paris"])
    assert [tag.token for tag in tags] == ["hello", "paris"]
    assert [(tag.start, tag.end) for tag in tags] == [(0, 5), (6, 11)]
    encoded = _tokenizer()(["hello paris"], return_tensors="pt")
    with torch.no_grad():
        best = model(**encoded).logits[0, 1:-1].argmax(-1).tolist()
    assert [tag.label for tag in tags] == [TAGS[i] for i in best]


def test_a_causal_lm_generates_greedy_and_sampled(wb: Any, tmp_path: Path) -> None:
    model = _gpt2()
    wb.models.push("writer", _folder(tmp_path, model, "writer"))
    runnable = load_runnable(wb, "writer@latest")
    assert runnable.task == "text-generation"
    greedy = GenerationParams(max_tokens=6)
    [first, second] = runnable.generate(["the cat", "hello world is"], greedy)
    encoded = _tokenizer()(["the cat"], add_special_tokens=True, return_tensors="pt")
    with torch.no_grad():
        ids = encoded["input_ids"]
        for _ in range(6):
            ids = torch.cat([ids, model(ids).logits[:, -1:].argmax(-1)], dim=1)
    generated = ids[0, encoded["input_ids"].shape[1] :].tolist()
    eos = generated.index(3) if 3 in generated else None
    kept = generated[:eos]
    assert first.text == _tokenizer().decode(kept, skip_special_tokens=True)
    assert first.tokens == len(kept)
    assert first.finish_reason == ("stop" if eos is not None else "length")
    assert first.tokens > 0
    assert second.tokens <= 6
    assert runnable.generate(["the cat"], greedy)[0] == first  # greedy is repeatable
    sampled = GenerationParams(temperature=1.5, top_k=20, top_p=0.9, max_tokens=8, seed=3)
    one = runnable.generate(["the cat"], sampled)
    assert one == runnable.generate(["the cat"], sampled)  # seeded
    assert one[0].tokens <= 8


def test_generation_stops_at_a_stop_string(wb: Any, tmp_path: Path) -> None:
    wb.models.push("writer", _folder(tmp_path, _gpt2(), "writer"))
    runnable = load_runnable(wb, "writer@latest")
    [full] = runnable.generate(["the cat"], GenerationParams(max_tokens=8))
    assert full.finish_reason == "length"
    words = full.text.split()
    assert len(words) >= 3
    [cut] = runnable.generate(["the cat"], GenerationParams(max_tokens=8, stop=(words[2],)))
    assert cut.finish_reason == "stop"
    assert words[2] not in cut.text
    assert full.text.startswith(cut.text)
    assert 0 < cut.tokens < full.tokens


def test_a_causal_lm_with_tied_embeddings_loads_them_once(wb: Any, tmp_path: Path) -> None:
    model = _gpt2(tied=True)
    folder = _folder(tmp_path, model, "tied")
    wb.models.push("tied", folder)
    runnable = load_runnable(wb, "tied@latest")
    built = runnable.model
    assert built.lm_head.weight.data_ptr() == built.transformer.wte.weight.data_ptr()
    torch.testing.assert_close(built.transformer.wte.weight, model.transformer.wte.weight)


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": -1.0},
        {"top_k": 0},
        {"top_p": 1.5},
        {"max_tokens": 0},
        {"stop": ("",)},
    ],
)
def test_bad_generation_params_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GenerationParams(**params)


def test_the_task_may_be_given_and_an_encoder_head_model_also_embeds(
    wb: Any, tmp_path: Path
) -> None:
    model = _bert("BertForSequenceClassification", num_labels=2, id2label=LABELS)
    wb.models.push("sentiment", _folder(tmp_path, model, "sentiment"))
    embedder = load_runnable(wb, "sentiment@latest", task="embeddings")
    assert embedder.task == "embeddings"
    texts = ["the cat"]
    encoded = _tokenizer()(texts, return_tensors="pt")
    with torch.no_grad():
        hidden = model.bert(**encoded).last_hidden_state.mean(1)
    expected = torch.nn.functional.normalize(hidden, dim=1).numpy()
    np.testing.assert_allclose(embedder.embed(texts), expected, atol=1e-5)
    with pytest.raises(ValidationError, match="cannot serve text-generation"):
        load_runnable(wb, "sentiment@latest", task="text-generation")
    with pytest.raises(ValidationError, match="unknown task 'summarise'"):
        load_runnable(wb, "sentiment@latest", task="summarise")
    with pytest.raises(ValidationError, match="no predict entry point"):
        load_runnable(wb, "sentiment@latest", task="predict")


def test_a_config_without_architectures_needs_a_task(wb: Any, tmp_path: Path) -> None:
    folder = _folder(tmp_path, _bert("BertModel"), "encoder")
    config = (folder / "config.json").read_text().replace('"BertModel"', '"Unknown"')
    (folder / "config.json").write_text(config)
    wb.models.push("encoder", folder)
    with pytest.raises(ValidationError, match="names no architecture; pass task="):
        load_runnable(wb, "encoder@latest")
    assert load_runnable(wb, "encoder@latest", task="embeddings").task == "embeddings"


def test_weights_without_the_head_do_not_fit_a_classifier(wb: Any, tmp_path: Path) -> None:
    folder = _folder(tmp_path, _bert("BertModel"), "encoder")
    config = (folder / "config.json").read_text().replace('"BertModel"', '"Unknown"')
    (folder / "config.json").write_text(config)
    wb.models.push("encoder", folder)
    with pytest.raises(ValidationError, match="do not fit BertForSequenceClassification"):
        load_runnable(wb, "encoder@latest", task="text-classification")


def test_a_module_pushed_without_a_tokenizer_is_refused(wb: Any) -> None:
    wb.models.push("headless", _bert("BertModel"))  # config.json from the module, no tokenizer
    with pytest.raises(ValidationError, match="no usable config or tokenizer"):
        load_runnable(wb, "headless@latest", task="embeddings")


def test_bad_batches_are_refused(wb: Any, tmp_path: Path) -> None:
    wb.models.push("encoder", _folder(tmp_path, _bert("BertModel"), "encoder"))
    runnable = load_runnable(wb, "encoder@latest")
    with pytest.raises(ValidationError, match="list of strings"):
        runnable.embed("one string, not a list")
    with pytest.raises(ValidationError, match="list of strings"):
        runnable.embed([1, 2])
    assert runnable.embed([]).shape == (0, TINY_BERT["hidden_size"])


@pytest.mark.cuda
def test_embeddings_on_cuda(wb: Any, tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = _bert("BertModel")
    wb.models.push("encoder", _folder(tmp_path, model, "encoder"))
    on_cpu = load_runnable(wb, "encoder@latest").embed(["the cat sat"])
    runnable = load_runnable(wb, "encoder@latest", device="cuda")
    assert next(runnable.model.parameters()).device.type == "cuda"
    np.testing.assert_allclose(runnable.embed(["the cat sat"]), on_cpu, atol=1e-4)
