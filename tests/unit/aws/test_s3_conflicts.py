"""S3's 409 ConditionalRequestConflict: a write in flight is not a stored artifact (checked with Stubber)."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from toolrt.adapters.aws import S3ArtifactStore
from toolrt.adapters.aws.serialization import converter
from toolrt.contracts import builders as b
from toolrt.domain import Artifact, CodeHash, ConflictError, Language, TransientError, ValidationReport

pytestmark = pytest.mark.aws

CODE = "def handler():\n    return 1\n"
ARTIFACT = Artifact(
    CodeHash.of("python", CODE), Language.PYTHON, CODE, "handler", ValidationReport(policy_version="p"), b.T0
)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client("s3", region_name="us-east-1")


def _put(stub: Stubber, error: tuple[str, int] | None = None) -> None:
    expected = {"Bucket": "b", "Key": ANY, "Body": ANY, "ContentType": "application/json", "IfNoneMatch": "*"}
    if error is None:
        stub.add_response("put_object", {"ETag": '"e1"'}, expected)
    else:
        stub.add_client_error(
            "put_object", service_error_code=error[0], http_status_code=error[1], expected_params=expected
        )


def test_a_conflicting_write_in_flight_is_retried_until_stored(s3: Any) -> None:
    """409 then success: the artifact was stored by this writer (True), after a second attempt."""
    store = S3ArtifactStore(s3, "b", sleep=lambda s: None)
    with Stubber(s3) as stub:
        _put(stub, ("ConditionalRequestConflict", 409))
        _put(stub)
        assert store.put(ARTIFACT) is True
        stub.assert_no_pending_responses()


def test_a_conflict_followed_by_an_existing_object_is_a_cache_hit(s3: Any) -> None:
    """409 then 412: the other writer won; the artifact exists (False)."""
    store = S3ArtifactStore(s3, "b", sleep=lambda s: None)
    with Stubber(s3) as stub:
        _put(stub, ("ConditionalRequestConflict", 409))
        _put(stub, ("PreconditionFailed", 412))
        assert store.put(ARTIFACT) is False


def test_persistent_conflicts_are_transient_errors_not_success(s3: Any) -> None:
    """A 409 never means stored: when attempts run out the caller is told to retry."""
    store = S3ArtifactStore(s3, "b", conflict_attempts=3, sleep=lambda s: None)
    with Stubber(s3) as stub:
        for _ in range(3):
            _put(stub, ("ConditionalRequestConflict", 409))
        with pytest.raises(TransientError, match="concurrent write"):
            store.put(ARTIFACT)


def test_a_conflict_on_report_replacement_is_a_conflict_error(s3: Any) -> None:
    """409 on the If-Match write of a new report: ConflictError (re-read and retry), not a StorageError."""
    store = S3ArtifactStore(s3, "b")
    body = json.dumps(converter.unstructure(ARTIFACT)).encode()
    with Stubber(s3) as stub:
        stub.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(body), len(body)), "ETag": '"e1"'},
            {"Bucket": "b", "Key": ANY},
        )
        stub.add_client_error("put_object", service_error_code="ConditionalRequestConflict", http_status_code=409)
        with pytest.raises(ConflictError):
            store.replace_report(ARTIFACT.code_hash, ValidationReport(policy_version="p2"))
