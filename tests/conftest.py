"""Fixtures shared by the whole suite: fresh object stores on every backend.

S3 runs against moto's server on loopback, started once per session; each test
gets a bucket of its own and fake credentials that live only as long as it does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weightbase.tensors.objects import ObjectStore, open_object_store

BACKENDS = ["local", "s3"]

# Credentials for moto; real ones from the environment or ~/.aws must never be used.
_FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
_UNSET_AWS_ENV = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto S3 server on 127.0.0.1, shared by the session."""
    pytest.importorskip("boto3", reason="the s3 backend needs the [s3] extra")
    moto_server = pytest.importorskip("moto.server", reason="S3 tests need moto[server]")
    # werkzeug logs every request at INFO; the lines would drown test output.
    werkzeug_logger = logging.getLogger("werkzeug")
    previous_level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.WARNING)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug_logger.setLevel(previous_level)


@pytest.fixture(scope="session")
def s3_admin(s3_server: str) -> Iterator[Any]:
    """A client for making and dropping test buckets, with the fake credentials built in."""
    import boto3

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=s3_server,
        region_name=_FAKE_AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=_FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=_FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Dummy AWS credentials and no AWS configuration, for the test's duration only."""
    for name, value in _FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in _UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    # Keep ~/.aws out of it. The paths stay the same all session long, so the
    # S3 store can reuse one boto3 session (it keys them on the AWS_* variables).
    absent = tmp_path_factory.getbasetemp() / "aws-absent"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(absent / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(absent / "credentials"))
    monkeypatch.delenv("WEIGHTBASE_S3_ENDPOINT_URL", raising=False)


@pytest.fixture
def s3_url(
    s3_server: str, s3_admin: Any, fake_aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """``s3://<fresh bucket>/wb``, with the environment pointing at the moto server."""
    monkeypatch.setenv("WEIGHTBASE_S3_ENDPOINT_URL", s3_server)
    bucket = f"wb-test-{uuid.uuid4().hex[:16]}"
    s3_admin.create_bucket(Bucket=bucket)
    try:
        yield f"s3://{bucket}/wb"
    finally:
        _drop_bucket(s3_admin, bucket)


def _drop_bucket(client: Any, bucket: str) -> None:
    """Empty and delete ``bucket`` so the session's server does not grow without bound."""
    from botocore.exceptions import ClientError

    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            keys = [{"Key": entry["Key"]} for entry in page.get("Contents", ())]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        client.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        # a test that removed the bucket itself has nothing left to clean
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty object store: a local folder or an S3 prefix."""
    if request.param == "s3":
        url: str = request.getfixturevalue("s3_url")
        return url
    return str(tmp_path / "store")


@pytest.fixture
def backend(store_url: str) -> str:
    """``"local"`` or ``"s3"``: which backend this run of a parametrized test uses."""
    return "s3" if store_url.startswith("s3://") else "local"


@pytest.fixture
def object_store(store_url: str) -> Iterator[ObjectStore]:
    """A fresh, empty object store on each backend (parametrized through ``store_url``)."""
    store = open_object_store(store_url)
    try:
        yield store
    finally:
        store.close()
