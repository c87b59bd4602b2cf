"""``/api/v1/datasets``: a version's quality grade and split report over HTTP."""

from __future__ import annotations

import httpx
from tests.api.support import DATASET

BASE = f"/datasets/{DATASET}"


def test_a_version_shows_its_grade_and_duplicate_groups(editor: httpx.Client) -> None:
    version = editor.get(f"{BASE}/-/versions/latest").json()
    assert version["quality_grade"] in set("ABCDF")
    assert version["quality"]["grade"] == version["quality_grade"]
    for part in version["quality"]["parts"]:
        assert {"value", "grade", "measure", "limit", "weight"} <= set(part)
    assert isinstance(version["split_duplicate_groups"], int)
    assert version["split_spec"]["group_duplicates"] is True
    listed = editor.get(f"{BASE}/-/versions").json()["items"][0]
    assert listed["quality_grade"] == version["quality_grade"]
