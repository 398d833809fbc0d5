"""S3 document store: presigned uploads with content conditions, presigned downloads, deletion.

Browsers upload straight to S3 with a presigned POST whose policy pins the object key, the
Content-Type and a content-length-range, so the API never streams files and S3 itself refuses
anything larger than allowed. Raises UpstreamError when S3 fails; a missing object is None.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import UpstreamError
from chalicelib.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UPLOAD_EXPIRES_SECONDS = 15 * 60
# S3 multipart parts must be at least 5 MiB (but the last).
PART_MIN_BYTES = 5 * 1024 * 1024
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

    # --- a file written in steps (an export job: one part per worker invocation) ----------------------
    def start_multipart(self, key: str, content_type: str) -> str:
        """Open a multipart upload of ``key``; returns its upload id. Raises UpstreamError."""
        try:
            created = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            logger.exception("CreateMultipartUpload failed")
            raise UpstreamError("document storage is unavailable, please retry") from exc
        return str(created["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        """Upload part ``number`` (again: the same number replaces it); every part but the last must be at least
        5 MiB (:data:`PART_MIN_BYTES`). Returns what :meth:`complete_multipart` needs. Raises UpstreamError."""
        try:
            part = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
        except (ClientError, BotoCoreError) as exc:
            logger.exception("UploadPart failed")
            raise UpstreamError("document storage is unavailable, please retry") from exc
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
            if str(exc.response.get("Error", {}).get("Code", "")) == "NoSuchUpload" and self.head(key) is not None:
                return
            logger.exception("CompleteMultipartUpload failed")
            raise UpstreamError("document storage is unavailable, please retry") from exc
        except BotoCoreError as exc:
            raise UpstreamError("document storage is unavailable, please retry") from exc

    def put_bytes(self, key: str, body: bytes, content_type: str) -> None:
        """Store ``body`` as it is. Raises UpstreamError."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            logger.exception("PutObject failed")
            raise UpstreamError("document storage is unavailable, please retry") from exc

    def get_bytes(self, key: str) -> bytes | None:
        """What :meth:`put_bytes` stored; None when it is not there. Raises UpstreamError."""
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
                return None
            logger.exception("GetObject failed")
            raise UpstreamError("document storage is unavailable, please retry") from exc
        except BotoCoreError as exc:
            raise UpstreamError("document storage is unavailable, please retry") from exc

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
