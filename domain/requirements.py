"""Third-party packages a tool asks for (its requirements) and the lock they resolve to.

A tool names packages the way its ecosystem does: PEP 508 specifiers for Python
(``python-dateutil>=2.8``, ``numpy==2.*``), ``name@range`` for JavaScript and TypeScript
(``lodash@^4.17``, ``@scope/pkg@1.2.x``). The runtime resolves them, at registration, to a
:class:`Lock`: every package that will be installed, with its exact version, where it came from and
the hash of the file. The lock, not the specifiers, is part of the tool's identity: two tools with
the same code and the same lock are the same artifact, and share one environment.

Why a lock and not the specifiers: ``numpy>=1`` means another thing tomorrow. The lock is what was
validated and what runs; re-resolving happens only when the requirements change.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import attrs
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from toolrt.domain.errors import ValidationError
from toolrt.domain.validation import Finding, Severity, ValidationReport

__all__ = [
    "MAX_REQUIREMENTS",
    "MAX_REQUIREMENT_CHARS",
    "Lock",
    "LockedPackage",
    "RequirementError",
    "RequirementsUnsupportedError",
    "canonical_package",
    "refuse_denied",
    "requirement_findings",
    "requirement_name",
    "to_requirements",
]

#: Requirements one tool may declare (its direct ones; the lock may hold more).
MAX_REQUIREMENTS = 32
#: The longest requirement written (characters): a specifier with markers fits many times over.
MAX_REQUIREMENT_CHARS = 256
_RULE = "definition.requirements"
# npm: an optional @scope/, then a name of lowercase letters, digits, '-', '.', '_' (at most 214).
_NPM_NAME = re.compile(r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*\Z")
# One comparator of an npm semver range: an operator, then a version whose parts may be x or *.
_NPM_COMPARATOR = re.compile(
    r"^(?:[\^~]|[<>]=?|=)?v?(?:\d+|[xX*])(?:\.(?:\d+|[xX*])){0,2}(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?\Z"
)


class RequirementError(ValidationError):
    """A requirement cannot be met: malformed, unknown, no version matches, no wheel, denied or too big.

    ``requirement`` is the requirement as the tool wrote it (or the package that broke a rule),
    ``reason`` one of ``malformed``, ``not_found``, ``no_matching_version``, ``no_wheel``,
    ``denied``, ``too_large``, ``resolution_failed``. Nothing was stored.
    """

    def __init__(self, requirement: str, reason: str, message: str, hint: str = "") -> None:
        self.requirement = requirement
        self.reason = reason
        finding = Finding(_RULE, Severity.ERROR, message, hint=hint)
        super().__init__(f"requirement {requirement!r} cannot be met", ValidationReport((finding,)))


class RequirementsUnsupportedError(ValidationError):
    """This runtime's profile cannot install packages (for ``language``, or at all); ``supported_by``
    names the profile that can ("" when none can yet)."""

    def __init__(self, profile: str, supported_by: str = "local", language: str = "") -> None:
        self.profile = profile
        self.supported_by = supported_by
        self.language = language
        what = f"{language} requirements" if language else "requirements"
        if supported_by:
            hint = (
                f"register tools with requirements on the {supported_by} profile "
                f"(toolrt.connect({supported_by!r})), or remove the requirements"
            )
        else:
            hint = "remove the requirements: no profile installs them yet"
        finding = Finding(_RULE, Severity.ERROR, f"the {profile} profile cannot install {what}", hint=hint)
        super().__init__(f"{what} are not supported by the {profile} profile", ValidationReport((finding,)))


def canonical_package(name: str) -> str:
    """A Python package name as PEP 503 compares them (``Python_Dateutil`` -> ``python-dateutil``)."""
    return str(canonicalize_name(name))


def to_requirements(value: Any) -> tuple[str, ...]:
    """The requirements as given, stripped, one per entry; a single string is one requirement.

    Duplicates are dropped and the order is made canonical (sorted), so that two definitions that
    ask for the same packages compare equal. Each entry is checked against its language later.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise ValidationError(
            "invalid tool definition",
            ValidationReport((Finding(_RULE, Severity.ERROR, "requirements must be a list of strings"),)),
        )
    return tuple(sorted({str(item).strip() for item in value}))


def requirement_name(language: str, requirement: str) -> str:
    """The package a well-formed requirement names (canonical for Python, as written for npm)."""
    if language == "python":
        return canonical_package(Requirement(requirement).name)
    name, _ = _split_npm(requirement)
    return name


def _split_npm(requirement: str) -> tuple[str, str]:
    at = requirement.rfind("@")
    if at <= 0:  # no version (or only a scope's '@'): any version
        return requirement, "*"
    return requirement[:at], requirement[at + 1 :]


def requirement_findings(language: str, requirements: tuple[str, ...]) -> Iterable[Finding]:
    """A finding naming each malformed requirement (and too many of them)."""
    if len(requirements) > MAX_REQUIREMENTS:
        yield Finding(_RULE, Severity.ERROR, f"{len(requirements)} requirements given, at most {MAX_REQUIREMENTS}")
    seen: dict[str, str] = {}
    for requirement in requirements:
        if not requirement:
            yield Finding(_RULE, Severity.ERROR, "a requirement is empty", hint="remove it, or name a package")
            continue
        if len(requirement) > MAX_REQUIREMENT_CHARS:
            yield Finding(
                _RULE,
                Severity.ERROR,
                f"requirement {requirement[:40]!r}... is {len(requirement)} characters, at most {MAX_REQUIREMENT_CHARS}",
            )
            continue
        if language == "python":
            name = yield from _python_findings(requirement)
        else:
            name = yield from _npm_findings(requirement)
        if name is None:
            continue
        if name in seen:
            yield Finding(
                _RULE,
                Severity.ERROR,
                f"requirements {seen[name]!r} and {requirement!r} name the same package",
                hint="write one requirement per package, with every constraint in it",
            )
        seen[name] = requirement


def _python_findings(requirement: str) -> Any:
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement as exc:
        yield Finding(
            _RULE,
            Severity.ERROR,
            f"requirement {requirement!r} is not a valid PEP 508 specifier: {str(exc).splitlines()[0]}",
            hint="write name, optionally with extras and versions: 'python-dateutil>=2.8', 'numpy==2.*'",
        )
        return None
    if parsed.url:
        yield Finding(
            _RULE,
            Severity.ERROR,
            f"requirement {requirement!r} points at a URL; only packages from the index are installed",
            hint=f"name the package and its version instead: '{parsed.name}==1.2.3'",
        )
        return None
    if parsed.marker is not None:
        yield Finding(
            _RULE,
            Severity.ERROR,
            f"requirement {requirement!r} has an environment marker; tools run on one known interpreter",
            hint=f"drop the marker: '{parsed.name}{parsed.specifier}'",
        )
        return None
    return canonical_package(parsed.name)


def _npm_findings(requirement: str) -> Any:
    name, version_range = _split_npm(requirement)
    if not _NPM_NAME.match(name) or len(name) > 214:
        yield Finding(
            _RULE,
            Severity.ERROR,
            f"requirement {requirement!r} does not name an npm package",
            hint="write name@range: 'lodash@^4.17.21', '@scope/pkg@1.x'",
        )
        return None
    if not _npm_range_ok(version_range):
        yield Finding(
            _RULE,
            Severity.ERROR,
            f"requirement {requirement!r} has a version range npm does not read as semver: {version_range!r}",
            hint="use a semver range: '^4.17.21', '~1.2', '>=1 <2', '1.2.3'; no URLs, tags or git references",
        )
        return None
    return name


def _npm_range_ok(version_range: str) -> bool:
    """Whether ``version_range`` is a semver range: comparators, hyphen ranges and ``||`` alternatives."""
    if not version_range or len(version_range) > 128:
        return False
    for alternative in version_range.split("||"):
        tokens = alternative.split()
        if not tokens:
            return False
        for index, token in enumerate(tokens):
            if token == "-" and 0 < index < len(tokens) - 1:
                continue
            if not _NPM_COMPARATOR.match(token):
                return False
    return True


def _to_strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(item) for item in value)


@attrs.frozen
class LockedPackage:
    """One package the lock installs: its name, exact version, where it came from and its file hash.

    ``sha256``: the hex digest of the file (the wheel), or for npm the tarball's integrity string
    (``sha512-...``). ``requested``: named by the requirements themselves rather than needed by
    another package. npm only: ``path``, where the package sits under ``node_modules`` (nested when
    two versions are needed: ``a/node_modules/b``), and ``dependencies``, its own ``name@range``
    edges, which npm needs to install the tree again exactly.
    """

    name: str
    version: str
    url: str
    sha256: str
    requested: bool = True
    path: str = ""
    dependencies: tuple[str, ...] = attrs.field(default=(), converter=_to_strings)


def _to_packages(value: Iterable[LockedPackage]) -> tuple[LockedPackage, ...]:
    return tuple(sorted(value, key=lambda p: (p.path or p.name, p.version)))


def _to_modules(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(value)))


@attrs.frozen
class Lock:
    """The resolved requirements: every package installed, exactly.

    ``language`` is the ecosystem: ``python``, or ``node`` (npm packages, for JavaScript and
    TypeScript alike). ``platform`` says where the lock holds (for Python, the interpreter and
    platform tags of the wheels: ``cp311-manylinux_2_17_x86_64``). ``modules`` are the top-level import names the packages
    provide, found when the environment was built: validation uses them to tell a missing import
    from a provided one. ``digest`` identifies the lock: language, platform, names, versions and
    hashes (not the URLs, which may move, nor the modules, which follow from the files).
    """

    language: str
    packages: tuple[LockedPackage, ...] = attrs.field(converter=_to_packages)
    platform: str = ""
    modules: tuple[str, ...] = attrs.field(default=(), converter=_to_modules)

    @property
    def digest(self) -> str:
        """The lock's content address (64 hex digits)."""
        lines = [f"{self.language}\n{self.platform}"]
        lines += [f"{p.path or p.name}=={p.version} sha256:{p.sha256}" for p in self.packages]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    @property
    def names(self) -> tuple[str, ...]:
        """The names of every locked package."""
        return tuple(p.name for p in self.packages)

    def describe(self) -> str:
        """``name==version`` of every package, comma-separated, for humans."""
        return ", ".join(f"{p.name}=={p.version}" for p in self.packages)


def refuse_denied(lock: Lock, requirements: tuple[str, ...], denied: Iterable[str]) -> None:
    """Raise RequirementError (``denied``) naming the first package of ``lock`` whose canonical name
    is in ``denied``: requirements may not bring a denied package in, directly or as a dependency."""
    refused = frozenset(denied)
    for name in lock.names:
        if canonical_package(name) in refused:
            raise RequirementError(
                name,
                "denied",
                f"package {name!r}, a dependency of {', '.join(requirements)}, is denied by the runtime's policy",
                hint="pick requirements that do not depend on it, or ask the runtime's owner to allow it",
            )
