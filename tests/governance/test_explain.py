"""Feature attributions of tabular models: real scikit-learn models on bundled datasets."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from weightbase.errors import MissingExtraError, ValidationError
from weightbase.governance.explain import METHOD, tabular
from weightbase.workspace import Workspace

pytest.importorskip("sklearn")
shap = pytest.importorskip("shap")

from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402


def _with_noise(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """``features`` and one more column of pure noise, on the same scale."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(features)) * features.std(axis=0).mean()
    return np.column_stack([features, noise])


@pytest.fixture
def version(workspace: Workspace) -> str:
    return workspace.models.push("tabular", {"w": np.ones((5, 3), dtype=np.float32)}).ref


def test_a_classifier_leans_on_the_petals_and_not_on_the_noise(
    workspace: Workspace, version: str
) -> None:
    iris = load_iris()
    x = _with_noise(iris.data)
    names = [*iris.feature_names, "noise"]
    model = LogisticRegression(max_iter=1000).fit(x, iris.target)
    state = np.random.get_state()
    explanation = workspace.explanations.compute(
        version,
        model.predict_proba,  # three outputs: averaged
        x,
        feature_names=names,
        background=x[::5],
        dataset="iris@1.0.0",
        max_samples=60,
    )
    assert np.array_equal(np.random.get_state()[1], state[1])  # the caller's RNG is untouched
    ranking = [item.feature for item in explanation.ranking()]
    assert ranking[-1] == "noise"
    assert set(ranking[:2]) <= {"petal length (cm)", "petal width (cm)", "sepal length (cm)"}
    assert "petal" in ranking[0]
    assert [item.feature for item in explanation.attributions] == names  # input order kept
    assert all(item.importance >= 0 for item in explanation.attributions)
    assert (explanation.method, explanation.library_version) == (METHOD, shap.__version__)
    assert (explanation.sample_size, explanation.background_size) == (60, 30)
    assert explanation.dataset == "iris@1.0.0"
    assert explanation.created_by == "test-user"
    stored = workspace.explanations.get(version)
    assert stored is not None
    assert stored.attributions == explanation.attributions
    assert stored.to_dict()["available"] is True
    model_id = workspace.models.get("tabular").id
    [entry] = workspace.audit.entries("model", model_id, action="explanation.compute")
    assert entry.after is not None
    assert entry.after["top_feature"] == ranking[0]
    [event] = workspace.events.history("explanation_computed")
    assert event.payload["model"] == "tabular"


def test_a_regressor_ranks_the_features_it_uses_first(workspace: Workspace, version: str) -> None:
    diabetes = load_diabetes()
    used = [diabetes.feature_names.index(name) for name in ("bmi", "s5", "bp")]
    x = _with_noise(diabetes.data[:, used], seed=1)
    model = LinearRegression().fit(x, diabetes.target)
    explanation = workspace.explanations.compute(
        version, model.predict, x, feature_names=["bmi", "s5", "bp", "noise"], max_samples=40
    )
    assert [item.feature for item in explanation.ranking()][-1] == "noise"
    assert explanation.background_size == 100  # sampled down from the rows
    assert explanation.sample_size == 40
    assert workspace.explanations.get(version) == explanation


def test_feature_names_come_from_a_data_frame_or_are_numbered(
    workspace: Workspace, version: str
) -> None:
    pandas = pytest.importorskip("pandas")
    rows = np.random.default_rng(0).standard_normal((30, 3))

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.asarray(batch)[:, 0] * 3.0 + np.asarray(batch)[:, 2]

    frame = pandas.DataFrame(rows, columns=["a", "b", "c"])
    named = workspace.explanations.compute(version, predict, frame, max_samples=10)
    assert [item.feature for item in named.ranking()] == ["a", "c", "b"]
    assert named.ranking()[-1].importance == pytest.approx(0.0, abs=1e-9)
    numbered = workspace.explanations.compute(version, predict, rows, max_samples=10)
    assert [item.feature for item in numbered.attributions] == ["x0", "x1", "x2"]
    with pytest.raises(ValidationError, match="2 feature names for 3 features"):
        workspace.explanations.compute(version, predict, rows, feature_names=["a", "b"])
    with pytest.raises(ValidationError, match="distinct"):
        workspace.explanations.compute(version, predict, rows, feature_names=["a", "a", "b"])
    with pytest.raises(ValidationError, match="background has 2 features, X has 3"):
        workspace.explanations.compute(version, predict, rows, background=rows[:, :2])


@pytest.mark.parametrize(
    "rows",
    [
        np.zeros((4, 3, 2)),  # images
        np.arange(5.0),  # one row, or one feature?
        np.array([["red", "blue"], ["green", "red"]]),
        [[1.0, 2.0], [3.0]],  # ragged
        np.zeros((0, 3)),
    ],
    ids=["3-d", "1-d", "strings", "ragged", "empty"],
)
def test_only_tabular_models_can_be_explained(
    workspace: Workspace, version: str, rows: object
) -> None:
    with pytest.raises(ValidationError, match="explainability is available for tabular models"):
        workspace.explanations.compute(version, lambda batch: np.zeros(len(batch)), rows)
    assert workspace.explanations.get(version) is None


def test_bad_predictions_are_refused(workspace: Workspace, version: str) -> None:
    rows = np.random.default_rng(0).standard_normal((8, 2))
    with pytest.raises(ValidationError, match="one value or one row of outputs per input row"):
        workspace.explanations.compute(version, lambda batch: np.zeros((2, 2, 2)), rows)
    with pytest.raises(ValidationError, match="not finite"):
        workspace.explanations.compute(
            version, lambda batch: np.asarray(batch)[:, 0] * np.nan, rows
        )
    with pytest.raises(ValidationError, match="callable"):
        workspace.explanations.compute(version, "model.pkl", rows)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="max_samples"):
        workspace.explanations.compute(version, len, rows, max_samples=0)
    assert workspace.explanations.get(version) is None


def test_without_shap_the_error_names_the_extra(
    workspace: Workspace, version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "shap", None)  # what an absent package looks like
    with pytest.raises(MissingExtraError, match=r"weightbase\[explain\]"):
        workspace.explanations.compute(version, len, np.ones((4, 2)))
    assert workspace.explanations.get(version) is None


def test_tabular_accepts_integers_and_booleans() -> None:
    assert tabular([[1, 2], [3, 4]]).dtype == np.float64
    assert tabular(np.array([[True, False]])).tolist() == [[1.0, 0.0]]
