"""``/api/v1/datasets``: listing, versions with statistics, quality and split sizes."""

from __future__ import annotations

import httpx
import pytest
from tests.api.support import DATASET, assert_error

BASE = f"/datasets/{DATASET}"


def test_list_and_filters(editor: httpx.Client) -> None:
    page = editor.get("/datasets").json()
    assert [item["name"] for item in page["items"]] == [DATASET]
    assert page["next"] is None
    assert editor.get("/datasets", params={"tag": "tabular"}).json()["items"][0]["name"] == DATASET
    assert editor.get("/datasets", params={"tag": "images"}).json()["items"] == []
    assert editor.get("/datasets", params={"format": "tensor"}).json()["items"] != []
    assert_error(editor.get("/datasets", params={"kind": "nonsense"}), 422, "validation_error")


def test_get_and_versions(editor: httpx.Client) -> None:
    dataset = editor.get(BASE).json()
    assert dataset["name"] == DATASET
    assert dataset["latest_version"] == "0.1.0"
    versions = editor.get(f"{BASE}/-/versions").json()["items"]
    assert [item["version"] for item in versions] == ["0.1.0"]
    assert_error(editor.get("/datasets/org/none"), 404, "not_found")


def test_version_has_statistics_quality_and_splits(editor: httpx.Client) -> None:
    response = editor.get(f"{BASE}/-/versions/latest")
    version = response.json()
    assert version["sample_count"] == 60
    assert sum(version["splits"].values()) == 60
    assert set(version["splits"]) == {"train", "validation", "test"}
    assert version["statistics"] is not None
    assert 0 <= version["quality"]["score"] <= 1
    etag = response.headers["etag"]
    cached = editor.get(f"{BASE}/-/versions/0.1.0", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert editor.get(f"{BASE}/-/versions/0.1.0", headers={"If-None-Match": "*"}).status_code == 304


def test_history(editor: httpx.Client) -> None:
    history = editor.get(f"{BASE}/-/history").json()["items"]
    assert history[0]["entity_kind"] == "dataset"
    assert_error(editor.get(f"{BASE}/-/history", params={"limit": 0}), 422, "validation_error")


@pytest.mark.parametrize(("what", "allowed"), [("kind", "supervised"), ("format", "tensor")])
def test_an_unknown_kind_or_format_is_422_naming_the_allowed_values(
    editor: httpx.Client, what: str, allowed: str
) -> None:
    error = assert_error(editor.get("/datasets", params={what: "bad"}), 422, "validation_error")
    assert what in error["message"]
    assert allowed in error["message"]
