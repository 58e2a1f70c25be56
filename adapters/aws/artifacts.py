"""An S3 ArtifactStore: ``artifacts/{code_hash}.json``, create-only, verified against its hash on read."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from toolrt.adapters.aws.errors import error_code, http_status, translate
from toolrt.adapters.aws.serialization import converter
from toolrt.domain import (
    Artifact,
    CodeHash,
    ConflictError,
    NotFoundError,
    StorageError,
    TransientError,
    ValidationReport,
)

BACKEND = "s3"
PREFIX = "artifacts/"


class S3ArtifactStore:
    """Keeps each artifact as one JSON object named by its code hash.

    Writes are create-only (``If-None-Match: *``), so two registrations racing on the same code
    store it once and both see the first copy; a 409 (a concurrent conditional write still in flight)
    is retried up to ``conflict_attempts`` times, then a TransientError. Report replacement is
    conditioned on the ETag read (``If-Match``), so a concurrent replacement (412 or 409) is a
    ``ConflictError`` rather than a lost update.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = PREFIX,
        *,
        conflict_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._conflict_attempts = max(1, conflict_attempts)
        self._sleep = sleep

    def get(self, code_hash: CodeHash) -> Artifact | None:
        found = self._read(code_hash)
        return found[0] if found is not None else None

    def put(self, artifact: Artifact) -> bool:
        body = self._encode(artifact)
        for attempt in range(1, self._conflict_attempts + 1):
            try:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=self._key(artifact.code_hash),
                    Body=body,
                    ContentType="application/json",
                    IfNoneMatch="*",
                )
            except ClientError as exc:
                if error_code(exc) == "PreconditionFailed" or http_status(exc) == 412:
                    return False  # the object exists: content addressing makes it this artifact
                if _in_flight(exc):
                    # 409 ConditionalRequestConflict: another conditional write to this key is in
                    # flight and may still fail, so nothing is known to be stored yet (S3 says: retry).
                    if attempt < self._conflict_attempts:
                        self._sleep(min(0.05 * 2 ** (attempt - 1), 1.0))
                        continue
                    raise TransientError(
                        f"{BACKEND}: put_object on s3://{self._bucket}/{self._key(artifact.code_hash)} met a "
                        f"concurrent write {attempt} times; retry later"
                    ) from exc
                raise self._translate(exc, "put_object", artifact.code_hash) from exc
            except BotoCoreError as exc:
                raise self._translate(exc, "put_object", artifact.code_hash) from exc
            return True
        raise AssertionError("unreachable")

    def replace_report(self, code_hash: CodeHash, report: ValidationReport) -> Artifact:
        found = self._read(code_hash)
        if found is None:
            raise NotFoundError("artifact", str(code_hash))
        artifact, etag = found
        updated = artifact.with_report(report)
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=self._key(code_hash),
                Body=self._encode(updated),
                ContentType="application/json",
                IfMatch=etag,
            )
        except ClientError as exc:
            if error_code(exc) == "PreconditionFailed" or http_status(exc) == 412 or _in_flight(exc):
                # 412: replaced since it was read. 409: another replacement is in flight. Either way a
                # concurrent writer won this round; re-reading and trying again is the caller's move.
                raise ConflictError(f"artifact {code_hash} changed while its report was replaced; retry") from exc
            raise self._translate(exc, "put_object", code_hash) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "put_object", code_hash) from exc
        return updated

    def delete(self, code_hash: CodeHash) -> None:
        try:
            self._client.delete_object(Bucket=self._bucket, Key=self._key(code_hash))
        except ClientError as exc:
            if error_code(exc) == "NoSuchKey":
                return
            raise self._translate(exc, "delete_object", code_hash) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "delete_object", code_hash) from exc

    def hashes(self) -> Iterable[CodeHash]:
        found: list[CodeHash] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=self._prefix
            ):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(self._prefix) :].removesuffix(".json")
                    try:
                        found.append(CodeHash(name))
                    except ValueError:
                        continue  # not an artifact (a stray object under the prefix)
        except (ClientError, BotoCoreError) as exc:
            raise translate(
                exc,
                backend=BACKEND,
                operation="list_objects_v2",
                resource=f"s3://{self._bucket}/{self._prefix}",
                kind="bucket",
            ) from exc
        return found

    def _read(self, code_hash: CodeHash) -> tuple[Artifact, str] | None:
        key = self._key(code_hash)
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            body = response["Body"].read()
        except ClientError as exc:
            if error_code(exc) == "NoSuchKey":
                return None
            raise self._translate(exc, "get_object", code_hash) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "get_object", code_hash) from exc
        try:
            artifact = converter.structure(json.loads(body.decode("utf-8")), Artifact)
        except Exception as exc:
            raise StorageError(f"s3://{self._bucket}/{key} is not a readable artifact: {exc}", backend=BACKEND) from exc
        actual = artifact.content_hash
        if actual != code_hash or artifact.code_hash != code_hash:
            raise StorageError(
                f"s3://{self._bucket}/{key} does not match its hash (content hashes to {actual})", backend=BACKEND
            )
        return artifact, str(response["ETag"])

    def _key(self, code_hash: CodeHash) -> str:
        return f"{self._prefix}{code_hash}.json"

    @staticmethod
    def _encode(artifact: Artifact) -> bytes:
        return json.dumps(converter.unstructure(artifact), ensure_ascii=False, sort_keys=True).encode("utf-8")

    def _translate(self, exc: BaseException, operation: str, code_hash: CodeHash) -> Exception:
        return translate(
            exc,
            backend=BACKEND,
            operation=operation,
            resource=f"s3://{self._bucket}/{self._key(code_hash)}",
            kind="artifact",
        )


def _in_flight(exc: ClientError) -> bool:
    return error_code(exc) == "ConditionalRequestConflict" or http_status(exc) == 409
