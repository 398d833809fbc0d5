"""S3 document store: presigned uploads with content conditions, presigned downloads, deletion.

Browsers upload straight to S3 with a presigned POST whose policy pins the object key, the
Content-Type and a content-length-range, so the API never streams files and S3 itself refuses
anything larger than allowed. Raises UpstreamError when S3 fails; a missing object is None.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import UpstreamError
from chalicelib.observability import logger

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mypy_boto3_s3 import S3Client

UPLOAD_EXPIRES_SECONDS = 15 * 60
# S3 multipart parts must be at least 5 MiB (but the last): a streamed upload buffers this much per part.
STREAM_PART_BYTES = 8 * 1024 * 1024
DOWNLOAD_EXPIRES_SECONDS = 5 * 60


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str


class DocumentStore:
    def __init__(self, bucket: str, client: S3Client | Any) -> None:
        self.bucket = bucket
        self.client = client

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
        try:
            post = self.client.generate_presigned_post(
                Bucket=self.bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
            )
        except (ClientError, BotoCoreError) as exc:
            logger.exception("Presigning an upload failed")
            raise UpstreamError("document storage is unavailable, please retry") from exc
        return {"url": post["url"], "fields": {k: str(v) for k, v in post["fields"].items()}}

    def presigned_put(self, key: str, content_type: str, expires_in: int = UPLOAD_EXPIRES_SECONDS) -> str:
        """A PUT URL signed for this Content-Type (no size condition: prefer :meth:`presigned_post`)."""
        try:
            return str(
                self.client.generate_presigned_url(
                    "put_object",
                    Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
                    ExpiresIn=expires_in,
                )
            )
        except (ClientError, BotoCoreError) as exc:
            raise UpstreamError("document storage is unavailable, please retry") from exc

    def presigned_get(self, key: str, filename: str, expires_in: int = DOWNLOAD_EXPIRES_SECONDS) -> str:
        try:
            return str(
                self.client.generate_presigned_url(
                    "get_object",
                    Params={
                        "Bucket": self.bucket,
                        "Key": key,
                        "ResponseContentDisposition": f'attachment; filename="{filename}"',
                    },
                    ExpiresIn=expires_in,
                )
            )
        except (ClientError, BotoCoreError) as exc:
            raise UpstreamError("document storage is unavailable, please retry") from exc

    def head(self, key: str) -> StoredObject | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            logger.exception("HeadObject failed", extra={"error_code": code})
            raise UpstreamError("document storage is unavailable, please retry") from exc
        except BotoCoreError as exc:
            raise UpstreamError("document storage is unavailable, please retry") from exc
        return StoredObject(int(response["ContentLength"]), str(response.get("ContentType", "")))

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> int:
        """Store the concatenation of ``chunks`` under ``key`` holding at most one part in memory: one
        PutObject when it is small, a multipart upload (aborted on failure) when not. Returns its size.

        Raises UpstreamError; an exception from ``chunks`` itself propagates after the abort.
        """
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[Any] = []
        try:
            for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= STREAM_PART_BYTES:
                    if upload_id is None:
                        created = self.client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type
                        )
                        upload_id = str(created["UploadId"])
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if upload_id is None:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer), ContentType=content_type)
                return size
            if buffer:
                parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            return size
        except BaseException as exc:
            if upload_id is not None:
                with contextlib.suppress(ClientError, BotoCoreError):
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            if isinstance(exc, ClientError | BotoCoreError):
                logger.exception("Storing a file failed")
                raise UpstreamError("document storage is unavailable, please retry") from exc
            raise

    def _upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        part = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"ETag": part["ETag"], "PartNumber": number}

    def put_json(self, key: str, data: Any) -> None:
        """Store ``data`` as gzip-compressed JSON (financial data: a 20,000-transaction history is ~0.5 MB).

        Raises UpstreamError.
        """
        body = gzip.compress(json.dumps(data, separators=(",", ":"), default=str).encode(), mtime=0)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", ContentEncoding="gzip"
            )
        except (ClientError, BotoCoreError) as exc:
            logger.exception("PutObject failed")
            raise UpstreamError("document storage is unavailable, please retry") from exc

    def get_json(self, key: str) -> Any:
        """What :meth:`put_json` stored; None when the object is gone. Raises UpstreamError."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
                return None
            logger.exception("GetObject failed")
            raise UpstreamError("document storage is unavailable, please retry") from exc
        except BotoCoreError as exc:
            raise UpstreamError("document storage is unavailable, please retry") from exc
        return json.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every version of every object under ``prefix`` (the bucket is versioned).

        Returns the number of object versions and delete markers removed.
        """
        removed = 0
        try:
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
        except (ClientError, BotoCoreError) as exc:
            logger.exception("Deleting documents failed")
            raise UpstreamError("document storage is unavailable, please retry") from exc
        return removed
