"""The S3 document store's error mapping: a missing object reads as None, every other S3 or transport failure is an
UpstreamError (a 502/503 to the caller, a retry for a worker), and cleanup that may fail quietly does."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from chalicelib.adapters.documents import DocumentStore
from chalicelib.errors import UpstreamError

BUCKET = "docs"


@pytest.fixture
def s3() -> Iterator[tuple[DocumentStore, Stubber]]:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",  # noqa: S106
    )
    with Stubber(client) as stub:
        yield DocumentStore(BUCKET, client), stub
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("code", ["404", "NoSuchKey", "NotFound"])
def test_a_missing_object_reads_as_none(s3: tuple[DocumentStore, Stubber], code: str) -> None:
    store, stub = s3
    stub.add_client_error("head_object", service_error_code=code, http_status_code=404)
    stub.add_client_error("get_object", service_error_code=code, http_status_code=404)
    stub.add_client_error("get_object", service_error_code=code, http_status_code=404)
    assert store.head("a") is None
    assert store.get_bytes("a") is None
    assert store.get_json("a") is None


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("head_object", lambda s: s.head("a")),
        ("get_object", lambda s: s.get_bytes("a")),
        ("get_object", lambda s: s.get_json("a")),
        ("put_object", lambda s: s.put_bytes("a", b"x", "text/csv")),
        ("put_object", lambda s: s.put_json("a", {"x": 1})),
        ("create_multipart_upload", lambda s: s.start_multipart("a", "text/csv")),
        ("upload_part", lambda s: s.upload_part("a", "u", 1, b"x")),
        ("complete_multipart_upload", lambda s: s.complete_multipart("a", "u", [])),
        ("list_object_versions", lambda s: s.delete_prefix("p/")),
    ],
)
def test_any_other_s3_error_is_an_upstream_error(s3: tuple[DocumentStore, Stubber], operation: str, call) -> None:  # type: ignore[no-untyped-def]
    store, stub = s3
    stub.add_client_error(operation, service_error_code="AccessDenied", http_status_code=403)
    with pytest.raises(UpstreamError, match="document storage is unavailable"):
        call(store)


def test_a_transport_failure_is_an_upstream_error() -> None:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",  # noqa: S106
    )

    def refuse(**_: object) -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    client.meta.events.register("before-send.s3.*", refuse)
    store = DocumentStore(BUCKET, client)
    for call in (lambda: store.head("a"), lambda: store.get_bytes("a"), lambda: store.put_bytes("a", b"x", "t")):
        with pytest.raises(UpstreamError):
            call()


def test_completing_an_upload_already_completed_succeeds(s3: tuple[DocumentStore, Stubber]) -> None:
    store, stub = s3
    stub.add_client_error("complete_multipart_upload", service_error_code="NoSuchUpload", http_status_code=404)
    stub.add_response("head_object", {"ContentLength": 3, "ContentType": "text/csv"})
    store.complete_multipart("a", "u", [{"ETag": "e", "PartNumber": 1}])


def test_completing_an_upload_that_never_was_fails(s3: tuple[DocumentStore, Stubber]) -> None:
    store, stub = s3
    stub.add_client_error("complete_multipart_upload", service_error_code="NoSuchUpload", http_status_code=404)
    stub.add_client_error("head_object", service_error_code="404", http_status_code=404)
    with pytest.raises(UpstreamError):
        store.complete_multipart("a", "u", [{"ETag": "e", "PartNumber": 1}])


def test_a_failed_abort_is_left_to_the_lifecycle_rule(s3: tuple[DocumentStore, Stubber]) -> None:
    store, stub = s3
    stub.add_client_error("abort_multipart_upload", service_error_code="InternalError", http_status_code=500)
    store.abort_multipart("a", "u")


def test_objects_s3_could_not_delete_are_reported(s3: tuple[DocumentStore, Stubber]) -> None:
    store, stub = s3
    stub.add_response(
        "list_object_versions",
        {"Versions": [{"Key": "p/a", "VersionId": "v1"}], "IsTruncated": False},
    )
    stub.add_response("delete_objects", {"Errors": [{"Key": "p/a", "Code": "AccessDenied"}]})
    with pytest.raises(UpstreamError, match="could not be deleted"):
        store.delete_prefix("p/")
