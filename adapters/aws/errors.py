"""Translation of boto3/botocore failures into the toolrt error family."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
)

from toolrt.domain import (
    ConflictError,
    NotFoundError,
    RegistrationError,
    StorageError,
    ToolRuntimeError,
    TransientError,
)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "LimitExceededException",
        "TransactionInProgressException",
        "InternalServerError",
        "InternalServerException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
# The service refused the credentials themselves (expired, unknown, mistyped).
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "InvalidSignatureException",
    }
)
CREDENTIALS_HINT = (
    "set AWS_PROFILE (after `aws configure`, or `aws sso login --profile NAME`), or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones); against moto or LocalStack any values do "
    "(AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing). `toolrt aws status` checks them"
)
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NoSuchKey", "NotFound", "NoSuchBucket", "404"})
CONFLICT_CODES = frozenset({"ConditionalCheckFailedException", "PreconditionFailed", "ConflictException"})
_TRANSIENT_REASONS = frozenset({"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"})


class CredentialsError(StorageError):
    """No usable AWS credentials (none found, expired, or refused): the message says how to provide them."""

    user_error = True


def credentials_error(exc: BaseException, where: str) -> CredentialsError | None:
    """The :class:`CredentialsError` for ``exc`` when it is about the credentials, else ``None``."""
    if isinstance(exc, NoCredentialsError):
        return CredentialsError(f"no AWS credentials were found for {where}: {CREDENTIALS_HINT}", backend="aws")
    if isinstance(
        exc, (PartialCredentialsError, CredentialRetrievalError, ProfileNotFound, SSOError, TokenRetrievalError)
    ):
        return CredentialsError(
            f"the AWS credentials for {where} cannot be used ({exc}): {CREDENTIALS_HINT}", backend="aws"
        )
    if isinstance(exc, NoRegionError):
        return CredentialsError(
            f"no AWS region is set for {where}: set TOOLRT_AWS_REGION (or AWS_REGION), for example us-east-1",
            backend="aws",
        )
    if isinstance(exc, ClientError) and error_code(exc) in CREDENTIAL_CODES:
        message = exc.response.get("Error", {}).get("Message", "") or error_code(exc)
        return CredentialsError(
            f"AWS refused the credentials for {where} ({error_code(exc)}: {message}): {CREDENTIALS_HINT}", backend="aws"
        )
    return None


def error_code(exc: ClientError) -> str:
    """The service's error code of ``exc`` (``ThrottlingException``, ``NoSuchKey``, ...).

    Exceptions inside event streams name their type in camel case (``throttlingException``);
    the first letter is raised so both spellings compare equal.
    """
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code[:1].upper() + code[1:]


def http_status(exc: ClientError) -> int:
    """The HTTP status of the failed call, 0 when unknown."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def cancellation_codes(exc: ClientError) -> list[str]:
    """Per-item reasons of a cancelled DynamoDB transaction (``None`` items become ``"None"``)."""
    reasons: list[Any] = exc.response.get("CancellationReasons", []) or []
    return [str(r.get("Code", "None")) for r in reasons]


def is_transient(exc: BaseException) -> bool:
    """True for throttling, 5xx and network failures: trying again later may succeed."""
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError)):
        return True
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in THROTTLING_CODES or http_status(exc) >= 500 or http_status(exc) == 429:
            return True
        if code == "TransactionCanceledException":
            reasons = set(cancellation_codes(exc))
            return bool(reasons & _TRANSIENT_REASONS) and "ConditionalCheckFailed" not in reasons
    return False


def translate(
    exc: BaseException,
    *,
    backend: str,
    operation: str,
    resource: str,
    kind: str = "resource",
    gateway: bool = False,
) -> ToolRuntimeError:
    """The toolrt error for ``exc`` raised by ``operation`` on ``resource`` of ``backend``.

    Throttling, 5xx and network failures become :class:`TransientError`; failed conditions
    :class:`ConflictError`; missing resources :class:`NotFoundError` (``kind`` names what was
    missing); everything else :class:`StorageError`, or :class:`RegistrationError` for the gateway.
    """
    where = f"{operation} on {resource}"
    if isinstance(exc, ToolRuntimeError):
        return exc
    credentials = credentials_error(exc, f"{backend} ({where})")
    if credentials is not None:
        return credentials
    if is_transient(exc):
        return TransientError(f"{backend}: {where} failed temporarily ({_describe(exc)}); retry later")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in CONFLICT_CODES or (
            code == "TransactionCanceledException" and "ConditionalCheckFailed" in cancellation_codes(exc)
        ):
            return ConflictError(f"{backend}: {where} lost a conditional check ({_describe(exc)})")
        if code == "NoSuchBucket" or (backend == "dynamodb" and code == "ResourceNotFoundException"):
            # The store itself is missing: a set-up problem, not an absent item.
            what = "bucket" if code == "NoSuchBucket" else "table"
            return StorageError(
                f"{where} failed: the {what} does not exist; `toolrt aws provision` creates it", backend=backend
            )
        if code in NOT_FOUND_CODES or http_status(exc) == 404:
            return NotFoundError(kind, resource)
    if gateway:
        return RegistrationError(f"{backend}: {where} failed: {_describe(exc)}", step=operation)
    return StorageError(f"{where} failed: {_describe(exc)}", backend=backend)


def is_html_answer(exc: BaseException) -> bool:
    """Whether the failed call was answered with an HTML page (a proxy or an emulator's error page,
    never an AWS service)."""
    if not isinstance(exc, ClientError):
        return False
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    message = str(exc.response.get("Error", {}).get("Message", "")).lstrip().lower()
    return "text/html" in str(headers.get("content-type", "")) or message.startswith(("<!doctype", "<html"))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError) and is_html_answer(exc):
        return f"HTTP {http_status(exc)} with an HTML page instead of an AWS answer"
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        return f"{error_code(exc)}: {message}"
    if isinstance(exc, BotoCoreError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"
