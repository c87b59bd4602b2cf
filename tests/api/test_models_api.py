"""``/api/v1/models``: listing, versions with ETags, aliases, stages, tags, metrics, diffs."""

from __future__ import annotations

import httpx
import numpy as np
from tests.api.support import MODEL, OWNED, Server, assert_error

BASE = f"/models/{MODEL}"


def test_list_pages_with_a_cursor_and_filters(editor: httpx.Client) -> None:
    first = editor.get("/models", params={"limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert [item["name"] for item in page["items"]] == [MODEL, OWNED]
    assert page["next"] is not None
    rest = editor.get("/models", params={"limit": 2, "after": page["next"]}).json()
    assert [item["name"] for item in rest["items"]] == ["zoo/model-0", "zoo/model-1"]
    last = editor.get("/models", params={"limit": 10, "after": "zoo/model-1"}).json()
    assert [item["name"] for item in last["items"]] == ["zoo/model-2"]
    assert last["next"] is None
    tagged = editor.get("/models", params={"tag": "base"}).json()["items"]
    assert tagged == []  # "base" tags the version, not the model
    production = editor.get("/models", params={"alias": "production"}).json()["items"]
    assert [item["name"] for item in production] == [MODEL]
    named = editor.get("/models", params={"name": "zoo/"}).json()["items"]
    assert len(named) == 3


def test_list_refuses_a_limit_out_of_range(editor: httpx.Client) -> None:
    error = assert_error(editor.get("/models", params={"limit": 0}), 422, "validation_error")
    assert error["context"]["errors"][0]["loc"] == ["query", "limit"]


def test_get_a_model_with_a_slash_in_its_name(editor: httpx.Client) -> None:
    model = editor.get(BASE).json()
    assert model["name"] == MODEL
    assert model["aliases"]["production"] == "0.1.0"
    assert model["version_count"] == 2


def test_unknown_model_is_404(editor: httpx.Client) -> None:
    error = assert_error(editor.get("/models/org/nothing"), 404, "not_found")
    assert "org/nothing" in error["message"]
    assert_error(editor.get("/models/org/nothing/-/versions"), 404, "not_found")


def test_versions_and_one_version_by_number_and_by_alias(editor: httpx.Client) -> None:
    versions = editor.get(f"{BASE}/-/versions").json()
    assert [item["version"] for item in versions["items"]] == ["0.1.0", "0.2.0"]
    assert versions["next"] is None
    by_alias = editor.get(f"{BASE}/-/versions/production")
    by_number = editor.get(f"{BASE}/-/versions/0.1.0")
    assert by_alias.json() == by_number.json()
    assert by_alias.json()["metrics"] == {"accuracy": 0.8}
    assert_error(editor.get(f"{BASE}/-/versions/9.9.9"), 404, "not_found")


def test_version_etag_and_if_none_match(editor: httpx.Client) -> None:
    first = editor.get(f"{BASE}/-/versions/0.2.0")
    etag = first.headers["etag"]
    assert etag.startswith('"')
    again = editor.get(f"{BASE}/-/versions/0.2.0", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = editor.get(f"{BASE}/-/versions/0.2.0", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    other = editor.get(f"{BASE}/-/versions/0.2.0", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200
    # A change to the version changes its ETag.
    tagged = editor.post(f"{BASE}/-/versions/0.2.0/tags", json={"add": ["etag-test"]})
    assert tagged.status_code == 200
    changed = editor.get(f"{BASE}/-/versions/0.2.0", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


def test_aliases_set_move_and_remove(editor: httpx.Client) -> None:
    moved = editor.put(f"{BASE}/-/aliases/staging", json={"version": "0.2.0", "reason": "try"})
    assert moved.status_code == 200
    assert "staging" in moved.json()["aliases"]
    assert editor.get(f"{BASE}/-/versions/staging").json()["version"] == "0.2.0"
    removed = editor.delete(f"{BASE}/-/aliases/staging", params={"reason": "done"})
    assert removed.status_code == 204
    assert_error(editor.get(f"{BASE}/-/versions/staging"), 404, "not_found")
    assert_error(editor.delete(f"{BASE}/-/aliases/staging"), 404, "not_found")
    assert_error(
        editor.put(f"{BASE}/-/aliases/staging", json={"version": "7.0.0"}), 404, "not_found"
    )
    assert_error(editor.put(f"{BASE}/-/aliases/staging", json={}), 422, "validation_error")


def test_promote_to_a_stage(editor: httpx.Client) -> None:
    promoted = editor.post(f"{BASE}/-/versions/0.2.0/stage", json={"stage": "staging"})
    assert promoted.status_code == 200
    assert promoted.json()["stage"] == "staging"
    assert_error(
        editor.post(f"{BASE}/-/versions/0.2.0/stage", json={"stage": "heaven"}),
        422,
        "validation_error",
    )


def test_tags_of_a_model_and_of_a_version(editor: httpx.Client) -> None:
    model = editor.post(f"{BASE}/-/tags", json={"add": ["nlp", "tiny"]}).json()
    assert {"nlp", "tiny"} <= set(model["tags"])
    model = editor.post(f"{BASE}/-/tags", json={"remove": ["tiny"]}).json()
    assert "tiny" not in model["tags"]
    version = editor.post(f"{BASE}/-/versions/0.1.0/tags", json={"add": ["golden"]}).json()
    assert "golden" in version["tags"]
    version = editor.post(f"{BASE}/-/versions/0.1.0/tags", json={"remove": ["golden"]}).json()
    assert "golden" not in version["tags"]
    assert_error(editor.post(f"{BASE}/-/tags", json={"add": [" spaced "]}), 422, "validation_error")


def test_log_metrics_on_a_version(editor: httpx.Client) -> None:
    logged = editor.post(
        f"{BASE}/-/versions/0.2.0/metrics", json={"metrics": {"f1": 0.75}, "step": 3}
    )
    assert logged.status_code == 200
    assert logged.json()["metrics"]["f1"] == 0.75
    assert_error(
        editor.post(f"{BASE}/-/versions/0.2.0/metrics", json={"metrics": {"f1": "high"}}),
        422,
        "validation_error",
    )


def test_compare_and_diff_within_a_model_and_across(editor: httpx.Client) -> None:
    compared = editor.get(f"{BASE}/-/compare", params={"a": "0.1.0", "b": "0.2.0"})
    assert compared.status_code == 200
    diff = compared.json()
    assert diff["a"] == f"{MODEL}@0.1.0"
    assert diff["b"] == f"{MODEL}@0.2.0"
    assert [change["name"] for change in diff["changed"]] == ["encoder.bias"]
    assert diff["unchanged"] == ["encoder.weight"]
    assert editor.get(f"{BASE}/-/diff", params={"a": "0.1.0", "b": "0.2.0"}).json() == diff
    across = editor.post(
        "/models/compare", json={"a": f"{MODEL}@production", "b": f"{MODEL}@0.2.0"}
    )
    assert across.json()["changed"] == diff["changed"]
    no_values = editor.get(
        f"{BASE}/-/compare", params={"a": "0.1.0", "b": "0.2.0", "values": "false"}
    ).json()
    assert no_values["changed"][0]["values"] is None
    assert_error(editor.get(f"{BASE}/-/compare", params={"a": "0.1.0"}), 422, "validation_error")
    assert_error(
        editor.get(f"{BASE}/-/compare", params={"a": "0.1.0", "b": "5.0.0"}), 404, "not_found"
    )


def test_history_and_lineage(editor: httpx.Client) -> None:
    history = editor.get(f"{BASE}/-/history").json()["items"]
    actions = [entry["action"] for entry in history]
    assert "alias.set" in actions
    assert history == sorted(history, key=lambda entry: entry["id"])
    ancestors = editor.get(f"{BASE}/-/versions/0.2.0/lineage").json()["items"]
    assert [(item["relation"], item["name"]) for item in ancestors] == [
        ("fine_tuned_from", f"{MODEL}@0.1.0")
    ]
    descendants = editor.get(
        f"{BASE}/-/versions/0.1.0/lineage", params={"direction": "descendants", "depth": 1}
    ).json()["items"]
    assert [item["name"] for item in descendants] == [f"{MODEL}@0.2.0"]
    assert_error(
        editor.get(f"{BASE}/-/versions/0.1.0/lineage", params={"direction": "sideways"}),
        422,
        "validation_error",
    )


def test_rollback_moves_the_alias_back(editor: httpx.Client, server: Server) -> None:
    editor.put(f"{BASE}/-/aliases/champion", json={"version": "0.2.0"})
    rolled = editor.post(
        f"{BASE}/-/rollback", json={"to": "0.1.0", "alias": "champion", "reason": "regression"}
    )
    assert rolled.status_code == 200
    assert rolled.json()["version"] == "0.1.0"
    assert server.wb.models.version(MODEL, "champion").version == "0.1.0"
    assert_error(editor.post(f"{BASE}/-/rollback", json={"to": "0.0.9"}), 404, "not_found")


def test_production_needs_the_approvals_the_policy_asks_for(
    editor: httpx.Client, server: Server
) -> None:
    gated = "org/gated"
    server.wb.models.push(gated, {"w": np.ones(4, dtype=np.float32)})
    server.wb.approvals.set_policy(
        gated, approvers=["approver-user"], require_approval_for_production=True
    )
    refused = editor.post(f"/models/{gated}/-/versions/0.1.0/stage", json={"stage": "production"})
    error = assert_error(refused, 403, "approval_required")
    assert error["context"] == {"model": gated, "version": "0.1.0"}
    alias = editor.put(f"/models/{gated}/-/aliases/production", json={"version": "0.1.0"})
    assert_error(alias, 403, "approval_required")
    staged = editor.post(f"/models/{gated}/-/versions/0.1.0/stage", json={"stage": "staging"})
    assert staged.status_code == 200


def _walk(client: httpx.Client, path: str, **params: object) -> tuple[list[dict[str, object]], int]:
    """Every item of a listing, one-item pages at a time; and how many pages it took."""
    items: list[dict[str, object]] = []
    cursor = None
    pages = 0
    while True:
        query = {**params, "limit": 1, **({"after": cursor} if cursor is not None else {})}
        body = client.get(path, params=query).json()
        items += body["items"]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return items, pages


def test_versions_history_and_lineage_page_with_a_cursor(editor: httpx.Client) -> None:
    base = f"/models/{MODEL}/-"
    whole = editor.get(f"{base}/versions").json()
    assert whole["next"] is None
    paged, pages = _walk(editor, f"{base}/versions")
    assert paged == whole["items"]
    assert pages == len(whole["items"]) >= 2
    history = editor.get(f"{base}/history").json()["items"]
    assert _walk(editor, f"{base}/history")[0] == history
    lineage = editor.get(f"{base}/versions/0.2.0/lineage").json()["items"]
    assert lineage
    assert _walk(editor, f"{base}/versions/0.2.0/lineage")[0] == lineage
    assert_error(
        editor.get(f"{base}/versions", params={"after": "not-semver"}), 422, "validation_error"
    )
