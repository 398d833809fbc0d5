"""S3 document store: presigned uploads with content conditions, presigned downloads, deletion.

Browsers upload straight to S3 with a presigned POST whose policy pins the object key, the
Content-Type and a content-length-range, so the API never streams files and S3 itself refuses
anything larger than allowed. Raises UpstreamError when S3 fails; a missing object is None.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import UpstreamError
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_s3 import S3Client

UPLOAD_EXPIRES_SECONDS = 15 * 60
# S3 multipart parts must be at least 5 MiB (but the last).
PART_MIN_BYTES = 5 * 1024 * 1024
DOWNLOAD_EXPIRES_SECONDS = 5 * 60
UNAVAILABLE = "document storage is unavailable, please retry"
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})
T = TypeVar("T")


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _missing(exc: ClientError) -> bool:
    return _code(exc) in _MISSING


class DocumentStore:
    def __init__(self, bucket: str, client: S3Client | Any) -> None:
        self.bucket = bucket
        self.client = client

    @staticmethod
    def _unavailable(operation: str, exc: ClientError | BotoCoreError) -> UpstreamError:
        """Log an S3 or transport failure; the error to raise for it."""
        code = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        logger.exception("S3 call failed", extra={"operation": operation, "error_code": code})
        return UpstreamError(UNAVAILABLE)

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        """``call()``. Raises UpstreamError when S3 fails."""
        try:
            return call()
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(operation, exc) from exc

    def _read(self, operation: str, call: Callable[[], T]) -> T | None:
        """``call()``, None when the object is not there. Raises UpstreamError when S3 fails otherwise."""
        try:
            return call()
        except ClientError as exc:
            if _missing(exc):
                return None
            raise self._unavailable(operation, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable(operation, exc) from exc

    def presigned_post(
        self,
        key: str,
        content_type: str,
        max_bytes: int,
        expires_in: int = UPLOAD_EXPIRES_SECONDS,
        success_redirect: str | None = None,
    ) -> dict[str, Any]:
        """``{"url", "fields"}`` for a multipart POST of exactly this key, type and size range."""
        fields: dict[str, str] = {"Content-Type": content_type}
        conditions: list[Any] = [
            {"Content-Type": content_type},
            ["content-length-range", 1, max_bytes],
        ]
        if success_redirect:
            fields["success_action_redirect"] = success_redirect
            conditions.append({"success_action_redirect": success_redirect})
        post = self._call(
            "PresignPost",
            lambda: self.client.generate_presigned_post(
                Bucket=self.bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
            ),
        )
        return {"url": post["url"], "fields": {k: str(v) for k, v in post["fields"].items()}}

    def presigned_put(self, key: str, content_type: str, expires_in: int = UPLOAD_EXPIRES_SECONDS) -> str:
        """A PUT URL signed for this Content-Type (no size condition: prefer :meth:`presigned_post`)."""
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        return str(
            self._call(
                "PresignPut",
                lambda: self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in),
            )
        )

    def presigned_get(self, key: str, filename: str, expires_in: int = DOWNLOAD_EXPIRES_SECONDS) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        }
        return str(
            self._call(
                "PresignGet",
                lambda: self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in),
            )
        )

    def head(self, key: str) -> StoredObject | None:
        response = self._read("HeadObject", lambda: self.client.head_object(Bucket=self.bucket, Key=key))
        if response is None:
            return None
        return StoredObject(int(response["ContentLength"]), str(response.get("ContentType", "")))

    # --- a file written in steps (an export job: one part per worker invocation) ----------------------
    def start_multipart(self, key: str, content_type: str) -> str:
        """Open a multipart upload of ``key``; returns its upload id. Raises UpstreamError."""
        created = self._call(
            "CreateMultipartUpload",
            lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type),
        )
        return str(created["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        """Upload part ``number`` (again: the same number replaces it); every part but the last must be at least
        5 MiB (:data:`PART_MIN_BYTES`). Returns what :meth:`complete_multipart` needs. Raises UpstreamError."""
        part = self._call(
            "UploadPart",
            lambda: self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            ),
        )
        return {"ETag": str(part["ETag"]), "PartNumber": number}

    def complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        """Join the parts into the object. A second call after a success (a redelivered message) finds the upload
        gone and the object there, and succeeds. Raises UpstreamError."""

        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            )
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload" and self.head(key) is not None:
                return
            raise self._unavailable("CompleteMultipartUpload", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("CompleteMultipartUpload", exc) from exc

    def put_bytes(self, key: str, body: bytes, content_type: str) -> None:
        """Store ``body`` as it is. Raises UpstreamError."""
        self._call(
            "PutObject",
            lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type),
        )

    def get_bytes(self, key: str) -> bytes | None:
        """What :meth:`put_bytes` stored; None when it is not there. Raises UpstreamError."""
        return self._read(
            "GetObject", lambda: bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload's parts (the bucket's lifecycle rule is the safety net)."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            logger.warning("AbortMultipartUpload failed; the lifecycle rule will drop the parts")

    def put_json(self, key: str, data: Any) -> None:
        """Store ``data`` as gzip-compressed JSON (financial data: a 20,000-transaction history is ~0.5 MB).

        Raises UpstreamError.
        """
        body = gzip.compress(json.dumps(data, separators=(",", ":"), default=str).encode(), mtime=0)
        self._call(
            "PutObject",
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", ContentEncoding="gzip"
            ),
        )

    def get_json(self, key: str) -> Any:
        """What :meth:`put_json` stored; None when the object is gone. Raises UpstreamError."""
        body = self.get_bytes(key)
        if body is None:
            return None
        return json.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every version of every object under ``prefix`` (the bucket is versioned).

        Returns the number of object versions and delete markers removed.
        """
        return self._call("DeleteObjects", lambda: self._delete_prefix(prefix))

    def _delete_prefix(self, prefix: str) -> int:
        removed = 0
        paginator = self.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            victims: list[Any] = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            for start in range(0, len(victims), 1000):
                chunk = victims[start : start + 1000]
                response = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True})
                if response.get("Errors"):
                    raise UpstreamError("some documents could not be deleted, please retry")
                removed += len(chunk)
        return removed
