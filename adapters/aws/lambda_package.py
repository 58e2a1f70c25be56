"""The deployment package of toolrt's Lambda functions (router and interceptor), built from what is installed.

The package holds the installed ``toolrt`` and the distributions its base install needs (resolved
from their metadata, extras left out), copied from the running interpreter's environment, so that
provisioning needs no network and deploys exactly the code that provisioned it. That is only right
when this interpreter could be the Lambda's: Linux on x86_64 or arm64 and a Python version Lambda
runs. :func:`lambda_runtime` says which runtime and architecture that is, or why there is none (then
use the CloudFormation template in ``deploy/`` with a package built for Lambda).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import platform
import re
import sys
import threading
import zipfile
from collections.abc import Iterator
from importlib import metadata, util
from pathlib import Path
from typing import Any

import attrs

try:
    from packaging.markers import Marker, default_environment
except ImportError:  # pragma: no cover - packaging comes with pip, setuptools and most environments
    Marker = None  # type: ignore[assignment,misc]

from toolrt.domain import StorageError

LAMBDA_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# The C library of each runtime: Amazon Linux 2 up to python3.11, Amazon Linux 2023 from python3.12.
LAMBDA_GLIBC = {"3.10": (2, 26), "3.11": (2, 26), "3.12": (2, 34), "3.13": (2, 34)}
# What the functions need beyond toolrt's base install: AWS clients, and token verification (PyJWT,
# with cryptography for RSA and EC signatures).
FUNCTION_DISTRIBUTIONS = ("boto3", "pyjwt", "cryptography")
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_")
_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
# Never in a function's package: build tools and what only the CLI, the MCP server or tests use.
_EXCLUDED = frozenset(
    {
        "pip",
        "setuptools",
        "wheel",
        "typer",
        "rich",
        "pygments",
        "click",
        "shellingham",
        "markdown-it-py",
        "mdurl",
        "pyseccomp",
    }
)
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)


@attrs.frozen
class LambdaPackage:
    """A zip file's bytes with the runtime and architecture it was built for.

    ``problems``: why the package would not load on that runtime (a compiled distribution built for
    a newer C library than the runtime has); empty when it would.
    """

    data: bytes
    runtime: str
    architecture: str
    problems: tuple[str, ...] = ()

    @property
    def sha256(self) -> str:
        """Base64 SHA-256 of the zip, as Lambda reports a function's ``CodeSha256``."""
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode("ascii")


def lambda_runtime() -> tuple[str, str]:
    """``(runtime, architecture)`` of a Lambda function this interpreter's packages can run in."""
    arch = _ARCHITECTURES.get(platform.machine().lower())
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if sys.platform != "linux" or arch is None or version not in LAMBDA_PYTHONS:
        raise StorageError(
            f"the Lambda package is built from this interpreter's packages, but Python {version} on "
            f"{sys.platform}/{platform.machine()} is not a Lambda runtime (Linux x86_64 or arm64, Python "
            f"{', '.join(LAMBDA_PYTHONS)}); provision from such a machine, or deploy deploy/cloudformation.yaml",
            backend="lambda",
        )
    return f"python{version}", arch


def _requirement_name(requirement: str) -> str | None:
    name, _, marker = requirement.partition(";")
    if marker.strip():
        if "extra" in marker:
            return None  # an optional part: not in the package
        if Marker is not None and not Marker(marker.strip()).evaluate(
            {k: str(v) for k, v in default_environment().items()}
        ):
            return None
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", name)
    return match.group(1) if match else None


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def needed_distributions(
    root: str = "toolrt", also: tuple[str, ...] = FUNCTION_DISTRIBUTIONS
) -> list[metadata.Distribution]:
    """``root``'s base requirements and theirs, recursively (extras and build tools left out)."""
    seen: dict[str, metadata.Distribution] = {}
    pending = [root, *also]
    while pending:
        name = _normalize(pending.pop())
        if name in seen or name in _EXCLUDED:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional part this environment does not have
        seen[name] = dist
        for requirement in dist.requires or []:
            required = _requirement_name(requirement)
            if required is not None:
                pending.append(required)
    return [dist for key, dist in sorted(seen.items()) if key != _normalize(root)]


def _files_of(dist: metadata.Distribution) -> Iterator[tuple[str, Path]]:
    for file in dist.files or []:
        relative = str(file)
        if relative.startswith("..") or "__pycache__" in relative or relative.endswith((".pyc", ".pth")):
            continue
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            yield relative, path


def _toolrt_files() -> Iterator[tuple[str, Path]]:
    spec = util.find_spec("toolrt")
    if spec is None or spec.origin is None:
        raise StorageError("the installed toolrt package cannot be found to package it", backend="lambda")
    package = Path(spec.origin).parent
    # os.walk follows the symlinked folders of a source checkout (Path.rglob does not).
    for folder, dirs, files in os.walk(package, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix != ".pyc":
                yield f"toolrt/{path.relative_to(package).as_posix()}", path


def required_glibc(dist: metadata.Distribution) -> tuple[int, int] | None:
    """The oldest C library (glibc) any of ``dist``'s wheel tags runs on; ``None`` for pure Python
    (or a build that says nothing)."""
    try:
        wheel = dist.read_text("WHEEL") or ""
    except OSError:
        return None
    found: list[tuple[int, int]] = []
    for line in wheel.splitlines():
        if not line.startswith("Tag:"):
            continue
        for platform_tag in line.split(":", 1)[1].strip().split("-")[-1].split("."):
            legacy = next((v for k, v in _LEGACY_MANYLINUX.items() if platform_tag.startswith(k + "_")), None)
            modern = _MANYLINUX.match(platform_tag)
            if legacy is not None:
                found.append(legacy)
            elif modern is not None:
                found.append((int(modern.group(1)), int(modern.group(2))))
    return min(found) if found else None


def runtime_problems(runtime: str, distributions: list[metadata.Distribution]) -> tuple[str, ...]:
    """Why ``distributions`` would not load on Lambda ``runtime`` (compiled for a newer glibc)."""
    version = runtime.removeprefix("python")
    glibc = LAMBDA_GLIBC.get(version)
    if glibc is None:
        return ()
    problems = []
    for dist in distributions:
        needed = required_glibc(dist)
        if needed is not None and needed > glibc:
            problems.append(
                f"{dist.metadata['Name']} {dist.version} is built for glibc {needed[0]}.{needed[1]}, and Lambda's "
                f"{runtime} has glibc {glibc[0]}.{glibc[1]}: provision with Python 3.12 or 3.13 (whose runtimes "
                f"have glibc 2.34), or install a {dist.metadata['Name']} wheel for manylinux2014 here"
            )
    return tuple(problems)


_built: dict[tuple[Any, ...], LambdaPackage] = {}
_built_lock = threading.Lock()


def build_lambda_package() -> LambdaPackage:
    """The zip of toolrt and its base dependencies, reproducible byte for byte for the same install.

    Compressing the dependencies (cryptography's libraries among them) takes seconds, so the zip is
    kept for as long as no file that goes into it changes (same paths, sizes and modification times).
    """
    runtime, architecture = lambda_runtime()
    entries: dict[str, Path] = {}
    distributions = needed_distributions()
    for dist in distributions:
        for name, path in _files_of(dist):
            entries.setdefault(name, path)
    for name, path in _toolrt_files():
        entries[name] = path
    key = (runtime, architecture, *((name, *_signature(entries[name])) for name in sorted(entries)))
    with _built_lock:
        if key in _built:
            return _built[key]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name].read_bytes())
    package = LambdaPackage(buffer.getvalue(), runtime, architecture, runtime_problems(runtime, distributions))
    with _built_lock:
        _built.clear()  # one install, one package: an older one is never asked for again
        _built[key] = package
    return package


def _signature(path: Path) -> tuple[int, int]:
    found = path.stat()
    return found.st_size, found.st_mtime_ns
