"""A run's reproducibility record over HTTP: the client's, sent with the run; never the server's."""

from __future__ import annotations

import httpx
from tests.api.support import assert_error


def test_the_server_records_the_environment_the_client_sent(editor: httpx.Client) -> None:
    sent = {
        "captured_at": "2026-12-01T00:00:00+00:00",
        "hostname": "client-laptop",
        "python_version": "3.11.9",
        "packages": {"numpy": "2.0.0"},
        "argv": ["train.py", "--lr", "0.1", "--hf-token=hf_abc"],
        "git": {"commit": "a" * 40, "branch": "main", "dirty": False},
        "hardware": {"cpu_count": 8, "gpus": [{"name": "NVIDIA H100", "memory_bytes": 1}]},
        "seeds": {"numpy": 3},
    }
    run = editor.post("/runs", json={"experiment": "api/env", "environment": sent}).json()
    found = editor.get(f"/runs/{run['id']}/environment").json()
    assert found["run_id"] == run["id"]
    environment = found["environment"]
    assert environment["hostname"] == "client-laptop"
    assert environment["packages"] == {"numpy": "2.0.0"}
    # a client that did not redact its command line is redacted on arrival
    assert environment["argv"] == ["train.py", "--lr", "0.1", "--hf-token=<redacted>"]
    assert environment["hardware"]["gpus"] == [{"name": "NVIDIA H100", "memory_bytes": 1}]
    assert environment["seeds"] == {"numpy": 3}

    added = editor.post(f"/runs/{run['id']}/seeds", json={"seeds": {"torch": 4}}).json()
    assert added["environment"]["seeds"] == {"numpy": 3, "torch": 4}


def test_a_run_sent_without_one_records_none_of_the_servers(editor: httpx.Client) -> None:
    run = editor.post("/runs", json={"experiment": "api/env"}).json()
    assert editor.get(f"/runs/{run['id']}/environment").json()["environment"] is None


def test_bad_environments_and_seeds_are_refused(editor: httpx.Client) -> None:
    for environment in ({"packages": ["numpy"]}, {"git": {"dirty": "yes"}}, {"seeds": {"a": -1}}):
        response = editor.post("/runs", json={"experiment": "api/env", "environment": environment})
        assert_error(response, 422, "validation_error")
    run = editor.post("/runs", json={"experiment": "api/env"}).json()
    for seeds in ({"numpy": 2**32}, {"numpy": "7"}, {"": 1}, {"numpy": True}):
        response = editor.post(f"/runs/{run['id']}/seeds", json={"seeds": seeds})
        assert_error(response, 422, "validation_error")
    assert_error(editor.get("/runs/987654/environment"), 404, "not_found")
    assert_error(editor.post("/runs/987654/seeds", json={"seeds": {"numpy": 1}}), 404, "not_found")


def test_a_viewer_reads_but_cannot_add_seeds(editor: httpx.Client, viewer: httpx.Client) -> None:
    run = editor.post("/runs", json={"experiment": "api/env"}).json()
    assert viewer.get(f"/runs/{run['id']}/environment").status_code == 200
    response = viewer.post(f"/runs/{run['id']}/seeds", json={"seeds": {"numpy": 1}})
    assert_error(response, 403, "permission_denied")
