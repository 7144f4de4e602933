"""S3 output of a pipeline run: where a run folder's files go when ``--out`` is ``s3://bucket/prefix``.

Needs ``boto3`` and AWS credentials (environment, ``~/.aws`` or an instance role).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def is_s3(path: str) -> bool:
    """Whether ``path`` is an ``s3://`` URL."""
    return str(path).startswith("s3://")


def client():
    """A boto3 S3 client; ``BOTO3_ENDPOINT_URL`` selects an S3-compatible store."""
    import boto3  # papermill's S3 support needs it too

    return boto3.client("s3", endpoint_url=os.environ.get("BOTO3_ENDPOINT_URL"))


def bucket_key(url: str) -> tuple[str, str]:
    """``s3://bucket/key/parts`` -> ``("bucket", "key/parts")``."""
    bucket, _, key = url[len("s3://"):].partition("/")
    return bucket, key


def exists(url: str) -> bool:
    """Whether the object at ``s3://bucket/key`` exists."""
    from botocore.exceptions import ClientError

    bucket, key = bucket_key(url)
    try:
        client().head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def upload(root: Path, out: str, names: Sequence[str]) -> int:
    """Upload ``names`` (files or folders) of the local run folder ``root`` under the S3 prefix ``out``;
    returns the number of files uploaded."""
    s3 = client()
    bucket, prefix = bucket_key(out.rstrip("/"))
    n = 0
    for name in names:
        path = root / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        for f in files:
            if f.name.startswith("."):  # temporary files of atomic writes
                continue
            s3.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(root).as_posix()}")
            n += 1
    return n
