"""The S3 object store: objects under a prefix of an S3 (or S3-compatible) bucket.

S3 makes every PUT atomic, so a put is a single request (multipart above a size
threshold). botocore errors are translated into weightbase's where they leave here.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from weightbase.errors import NotFound, StorageError, ValidationError
from weightbase.tensors.objects import ObjectInfo, ObjectStore, validate_key

if TYPE_CHECKING:
    from weightbase.tensors.codecs import Buffer

__all__ = ["ENDPOINT_ENV", "S3ObjectStore"]

ENDPOINT_ENV = "WEIGHTBASE_S3_ENDPOINT_URL"

_MiB = 1 << 20
# Error codes S3 and S3-compatible services use for "no such object".
_MISSING_KEY = frozenset({"NoSuchKey", "404", "NotFound"})
_MISSING_BUCKET = frozenset({"NoSuchBucket"})
# GETs in flight at once in get_many (each a round trip; the pool holds 32 connections).
_PARALLEL_GETS = 16
# AWS's rules plus the upper case and underscores that older buckets and
# S3-compatible services allow; enough to keep URLs' user and port parts out.
_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


class S3ObjectStore(ObjectStore):
    """Objects stored as ``s3://bucket/prefix/<key>``.

    Endpoint, region and credentials come from the usual AWS environment and
    configuration files; ``WEIGHTBASE_S3_ENDPOINT_URL`` points the store at an
    S3-compatible service such as MinIO. One client serves every thread.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        client: Any = None,
        max_pool_connections: int = 32,
        multipart_threshold: int = 64 * _MiB,
        multipart_chunksize: int = 16 * _MiB,
    ) -> None:
        if not _BUCKET_NAME.fullmatch(bucket):
            raise ValidationError(f"invalid S3 bucket name {bucket!r}", bucket=bucket)
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._base = f"{prefix}/" if prefix else ""
        self._bucket_checked = False
        self._transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=8,
            # the classic transfer manager shares this store's client and its pool
            preferred_transfer_client="classic",
        )
        if client is not None:
            self._client = client
            self._owns_client = False
            self.endpoint_url = endpoint_url
            return
        endpoint_url = endpoint_url or os.environ.get(ENDPOINT_ENV) or None
        region_name = (
            region_name
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or None
        )
        options: dict[str, Any] = {}
        if endpoint_url:
            # S3-compatible services rarely give each bucket a DNS name; AWS
            # (or the user's ~/.aws/config) picks the style on its own.
            options["s3"] = {"addressing_style": "path"}
        config = Config(
            max_pool_connections=max_pool_connections,
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=10,
            read_timeout=60,
            tcp_keepalive=True,
            **options,
        )
        self.endpoint_url = endpoint_url
        self._client = _make_client(endpoint_url, region_name, config)
        self._owns_client = True

    @classmethod
    def from_url(cls, url: str) -> S3ObjectStore:
        """The store for ``s3://bucket`` or ``s3://bucket/prefix``."""
        parts = urlsplit(url)
        if "@" in parts.netloc:
            # not echoed: whatever precedes the @ is likely a secret
            raise ValidationError(
                "an s3:// URL takes no credentials; set them in the AWS environment instead"
            )
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValidationError(f"expected s3://bucket/prefix, got {url!r}", url=url)
        return cls(parts.netloc, parts.path)

    # -- helpers ------------------------------------------------------------

    def _object_key(self, key: str) -> str:
        return self._base + validate_key(key)

    def _missing_bucket(self, key: str | None) -> StorageError:
        where = f" (endpoint {self.endpoint_url})" if self.endpoint_url else ""
        return StorageError(
            f"the S3 bucket {self.bucket!r} does not exist{where}", key=key, bucket=self.bucket
        )

    @contextlib.contextmanager
    def _translate(self, action: str, key: str | None) -> Iterator[None]:
        """Turn botocore's errors into ``NotFound`` and ``StorageError``."""
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_BUCKET:
                raise self._missing_bucket(key) from exc
            if code in _MISSING_KEY and key is not None:
                raise NotFound(f"no object {key} in {self.url}", key=key) from None
            target = f"{key} in {self.url}" if key is not None else self.url
            raise StorageError(f"cannot {action} {target}: {exc}", key=key) from exc
        except BotoCoreError as exc:
            target = f"{key} in {self.url}" if key is not None else self.url
            raise StorageError(f"cannot {action} {target}: {exc}", key=key) from exc

    def _check_bucket(self, key: str) -> None:
        """Tell a missing bucket from a missing key once a HEAD says 404 (it says so for both)."""
        if self._bucket_checked:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_KEY or code in _MISSING_BUCKET:
                raise self._missing_bucket(key) from exc
            # Forbidden and the like: the bucket may well exist, we just may not ask.
        except BotoCoreError as exc:
            raise StorageError(f"cannot reach {self.url}: {exc}", key=key) from exc
        self._bucket_checked = True

    # -- primitives ---------------------------------------------------------

    def put(self, key: str, data: Buffer, *, durable: bool = True) -> None:
        # an object is durable once S3 has acknowledged it, either way
        object_key = self._object_key(key)
        size = memoryview(data).nbytes
        with self._translate("write", key):
            if size < self._transfer_config.multipart_threshold:
                # botocore takes bytes and bytearray as they are, other buffers as files
                body = data if isinstance(data, bytes | bytearray) else io.BytesIO(data)
                self._client.put_object(Bucket=self.bucket, Key=object_key, Body=body)
            else:
                self._client.upload_fileobj(
                    io.BytesIO(data), self.bucket, object_key, Config=self._transfer_config
                )

    def get(self, key: str) -> Buffer:
        object_key = self._object_key(key)
        with self._translate("read", key):
            response = self._client.get_object(Bucket=self.bucket, Key=object_key)
            with contextlib.closing(response["Body"]) as body:
                content: bytes = body.read()
        return content

    def get_many(self, keys: Iterable[str]) -> dict[str, Buffer]:
        """Read ``keys`` side by side (a GET is a round trip); those that exist."""

        def fetch(key: str) -> tuple[str, Buffer | None]:
            try:
                return key, self.get(key)
            except NotFound:
                return key, None

        keys = list(dict.fromkeys(keys))
        if len(keys) <= 1:
            return super().get_many(keys)
        with ThreadPoolExecutor(max_workers=min(len(keys), _PARALLEL_GETS)) as pool:
            return {key: data for key, data in pool.map(fetch, keys) if data is not None}

    def get_range(self, key: str, start: int, length: int) -> Buffer:
        object_key = self._object_key(key)
        if start < 0 or length < 0:
            raise ValidationError(f"invalid range start={start} length={length} for {key}", key=key)
        if length == 0:
            # S3 would answer an empty range with the whole object.
            if not self.exists(key):
                raise NotFound(f"no object {key} in {self.url}", key=key)
            return b""
        with self._translate("read", key):
            try:
                response = self._client.get_object(
                    Bucket=self.bucket, Key=object_key, Range=f"bytes={start}-{start + length - 1}"
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                    return b""  # the range starts at or past the end of the object
                raise
            with contextlib.closing(response["Body"]) as body:
                content: bytes = body.read()
        return content

    def exists(self, key: str) -> bool:
        object_key = self._object_key(key)
        try:
            with self._translate("check", key):
                self._client.head_object(Bucket=self.bucket, Key=object_key)
        except NotFound:
            self._check_bucket(key)
            return False
        return True

    def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        with self._translate("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=object_key)

    def touch(self, key: str) -> None:
        object_key = self._object_key(key)
        with self._translate("touch", key):
            # Copying an object onto itself is allowed only when something
            # changes; replacing the (empty) metadata is enough and renews
            # LastModified without moving the bytes through this machine.
            # (A single copy is limited to 5 GiB, far above any chunk, and a
            # versioned bucket keeps the old version until its lifecycle ends.)
            self._client.copy_object(
                Bucket=self.bucket,
                Key=object_key,
                CopySource={"Bucket": self.bucket, "Key": object_key},
                MetadataDirective="REPLACE",
            )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not _could_prefix_a_key(prefix):
            return
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._base + prefix)
        with self._translate("list", None):
            for page in pages:
                for entry in page.get("Contents", ()):
                    yield ObjectInfo(
                        entry["Key"][len(self._base) :],
                        int(entry["Size"]),
                        entry["LastModified"].timestamp(),
                    )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.url!r})"


_sessions: dict[tuple[tuple[str, str], ...], boto3.session.Session] = {}
_sessions_lock = threading.Lock()


def _make_client(endpoint_url: str | None, region_name: str | None, config: Config) -> Any:
    """A new S3 client from a session shared by stores that see the same AWS environment.

    A fresh session costs a tenth of a second loading service models, a client
    from a warm one a hundredth. Sessions are not thread-safe, hence the lock;
    the clients they make are.
    """
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    with _sessions_lock:
        session = _sessions.get(environment)
        if session is None:
            if len(_sessions) >= 8:
                _sessions.pop(next(iter(_sessions)))
            session = _sessions[environment] = boto3.session.Session()
        return session.client(
            "s3", endpoint_url=endpoint_url, region_name=region_name, config=config
        )


def _could_prefix_a_key(prefix: str) -> bool:
    """Whether any valid key starts with ``prefix`` (if none does, a listing is empty)."""
    try:
        validate_key(prefix + "x")
    except ValidationError:
        return False
    return True
