"""Fixtures shared by the whole suite: fresh object stores and catalogs on every backend.

S3 runs against moto's server on loopback, started once per session; each test
gets a bucket of its own and fake credentials that live only as long as it does.

PostgreSQL runs on 127.0.0.1:5432 (``WEIGHTBASE_TEST_POSTGRES_URL`` to point
elsewhere); each test gets a schema of its own in one database, dropped after
it. When the server cannot be reached the PostgreSQL tests fail under ``CI``
and are skipped elsewhere, with a message saying how to enable them.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings

from weightbase.tensors.objects import ObjectStore, open_object_store

# Shared CI machines are slow and noisy: no per-example deadline (a slow
# example is not a wrong one).
settings.register_profile("weightbase", deadline=None)
settings.load_profile("weightbase")

if TYPE_CHECKING:
    from weightbase.catalog import Catalog
    from weightbase.workspace import Workspace

BACKENDS = ["local", "s3"]
CATALOG_BACKENDS = ["sqlite", "postgres"]
POSTGRES_URL_VARIABLE = "WEIGHTBASE_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

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


# -- catalogs ------------------------------------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[tuple[str, Any]]:
    """The test server's URL and an autocommit psycopg connection to it, for the session.

    Unreachable: a failure under ``CI`` (the PostgreSQL half must never be
    skipped there), a skip with instructions elsewhere.
    """
    from sqlalchemy.engine import make_url

    url = os.environ.get(POSTGRES_URL_VARIABLE) or DEFAULT_POSTGRES_URL
    shown = make_url(url).render_as_string(hide_password=True)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    problem = None
    connection = None
    try:
        import psycopg
    except ImportError:
        problem = "psycopg is not installed (pip install 'weightbase[postgres]')"
    else:
        try:
            connection = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            problem = f"cannot reach PostgreSQL at {shown} ({' '.join(str(exc).split())})"
    if connection is None:
        if _in_ci():
            pytest.fail(
                f"{problem}. CI runs the PostgreSQL half of the suite and never skips it: "
                f"start the server (pg_ctlcluster --skip-systemctl-redirect "
                f"$(ls /etc/postgresql) main start) or set {POSTGRES_URL_VARIABLE}.",
                pytrace=False,
            )
        pytest.skip(
            f"{problem}. To run the PostgreSQL tests, start a server on 127.0.0.1:5432 or set "
            f"{POSTGRES_URL_VARIABLE}={DEFAULT_POSTGRES_URL}"
        )
    try:
        yield url, connection
    finally:
        connection.close()


@pytest.fixture
def postgres_url(postgres_admin: tuple[str, Any]) -> Iterator[str]:
    """A URL whose connections work in a fresh, empty schema of the test database."""
    from sqlalchemy.engine import make_url

    server_url, admin = postgres_admin
    schema = f"wbt_{uuid.uuid4().hex[:16]}"
    admin.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        # A connection a test left inside a transaction would block the drop forever.
        admin.execute("SET lock_timeout = '10s'")
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=CATALOG_BACKENDS, ids=CATALOG_BACKENDS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty catalog database: a SQLite file or a PostgreSQL schema."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture
def catalog_backend(catalog_url: str) -> str:
    """``"sqlite"`` or ``"postgres"``: which database this run of a parametrized test uses."""
    return "postgres" if catalog_url.startswith("postgresql") else "sqlite"


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    """A migrated, empty catalog on each database (parametrized through ``catalog_url``)."""
    from weightbase.catalog import Catalog

    opened = Catalog.open(catalog_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def weightbase_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``WEIGHTBASE_HOME`` with no other ``WEIGHTBASE_*`` settings, and a fixed actor."""
    for name in ("WEIGHTBASE_CATALOG_URL", "WEIGHTBASE_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "weightbase-home"
    monkeypatch.setenv("WEIGHTBASE_HOME", str(home))
    monkeypatch.setenv("WEIGHTBASE_ACTOR", "test-user")
    return home


@pytest.fixture
def workspace(catalog_url: str, weightbase_home: Path) -> Iterator[Workspace]:
    """``weightbase.open()`` on a fresh catalog (each database) and a local store."""
    import weightbase

    opened = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A weightbase server on loopback for the session; tests swap in their own workspace."""
    from tests.remote_support import start_server

    yield from start_server(str(tmp_path_factory.mktemp("live-server") / "home"))


def remote_variants(metafunc: pytest.Metafunc) -> None:
    """Run each test of a suite that takes ``workspace`` embedded and against ``live_server``.

    A suite's conftest calls this from ``pytest_generate_tests``; tests marked
    ``embedded_only`` run embedded alone.
    """
    if "workspace_kind" not in metafunc.fixturenames:
        return
    local_only = metafunc.definition.get_closest_marker("embedded_only") is not None
    metafunc.parametrize("workspace_kind", ["embedded"] if local_only else ["embedded", "remote"])


@pytest.fixture
def remote_or_embedded(
    request: pytest.FixtureRequest, workspace_kind: str, catalog_url: str, weightbase_home: Path
) -> Iterator[Workspace]:
    """A fresh workspace, used in-process or through ``live_server`` (per ``workspace_kind``)."""
    import weightbase

    opened = weightbase.open(weightbase_home, catalog_url=catalog_url)
    try:
        if workspace_kind == "embedded":
            yield opened
        else:
            server = request.getfixturevalue("live_server")
            with server.serving(opened) as remote:
                yield remote
    finally:
        opened.close()
