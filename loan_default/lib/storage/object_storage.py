"""Files that live either on local disk or on S3-compatible object storage, by location.

A location is a path or an `s3://bucket/key` URI. Model artifacts and reports go through here,
so the production profile keeps them in the same object store as the warehouse's data files,
and the registry records where each one is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


@dataclass(frozen=True)
class S3Endpoint:
    """An S3-compatible service: AWS itself, or a server on loopback (`http://127.0.0.1:port`)."""

    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str

    @property
    def host(self) -> str:
        return urlparse(self.endpoint).netloc

    @property
    def uses_ssl(self) -> bool:
        return urlparse(self.endpoint).scheme == "https"

    def client(self):
        import boto3  # only the production profile needs it

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def duckdb_secret(self) -> str:
        """The `CREATE SECRET` that lets DuckDB read and write this endpoint's buckets."""
        return (
            "create or replace secret loan_default_s3 (type s3, "
            f"key_id '{self.access_key_id}', secret '{self.secret_access_key}', "
            f"region '{self.region}', endpoint '{self.host}', url_style 'path', "
            f"use_ssl {str(self.uses_ssl).lower()})"
        )


def _bucket_key(location: str) -> tuple[str, str]:
    parsed = urlparse(location)
    return parsed.netloc, parsed.path.lstrip("/")


def is_remote(location: str) -> bool:
    return location.startswith("s3://")


def join(root: str, *parts: str) -> str:
    """`root/part/...` for a folder path or an s3:// prefix."""
    if is_remote(root):
        return "/".join([root.rstrip("/"), *parts])
    return str(Path(root).joinpath(*parts))


def write_bytes(location: str, data: bytes, s3: S3Endpoint | None = None) -> None:
    """Writes whole or not at all: a local file through a rename, an object in one PUT."""
    if is_remote(location):
        bucket, key = _bucket_key(location)
        _require(s3, location).client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def read_bytes(location: str, s3: S3Endpoint | None = None) -> bytes:
    """The file's bytes; FileNotFoundError when it does not exist."""
    if is_remote(location):
        bucket, key = _bucket_key(location)
        client = _require(s3, location).client()
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey as error:
            raise FileNotFoundError(f"no object at {location}") from error
    return Path(location).read_bytes()


def exists(location: str, s3: S3Endpoint | None = None) -> bool:
    """Whether a file or object is at `location`, asked without reading it."""
    if not is_remote(location):
        return Path(location).is_file()
    bucket, key = _bucket_key(location)
    client = _require(s3, location).client()
    try:
        client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _require(s3: S3Endpoint | None, location: str) -> S3Endpoint:
    if s3 is None:
        raise ValueError(f"{location} is on object storage, but no S3 endpoint is configured")
    return s3
