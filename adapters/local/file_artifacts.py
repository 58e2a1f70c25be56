"""An ArtifactStore of content-addressed JSON files (``root/ab/abcdef....json``), written atomically."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from toolrt.adapters.local import _serde
from toolrt.domain import Artifact, CodeHash, NotFoundError, StorageError, ValidationReport
from toolrt.logs import get_logger

log = get_logger(__name__)

_SHARD = re.compile(r"^[0-9a-f]{2}\Z")
_ARTIFACT = re.compile(r"^([0-9a-f]{64})\.json\Z")
_TEMP_PREFIX = ".tmp-"
_LOCK_NAME = ".lock"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class FileArtifactStore:
    """One JSON file per artifact under ``root``, sharded by the first two hex digits of the hash.

    - ``put`` writes a temp file in the target directory, fsyncs it, then hard-links it to its final
      name: the link fails if the name exists, so of two racing writers exactly one creates the file
      (and gets ``True``) and nobody ever sees a partial artifact. The directory is fsync'd after.
    - ``replace_report`` writes a temp file the same way and renames it over the old one.
    - Reads open the shard directory and the file without following symbolic links, parse the JSON
      and recompute the hash; a malformed or mismatching file raises :class:`StorageError` naming it.
    - A writer killed mid-write leaves only a ``.tmp-*`` file, never a torn artifact;
      :meth:`stale_temp_files` lists them and :meth:`remove_stale_temp_files` removes them.
    """

    def __init__(self, root: Path, *, file_mode: int = 0o644) -> None:
        self._root = Path(root)
        self._file_mode = file_mode
        self._backend = f"artifacts {self._root}"

    @property
    def root(self) -> Path:
        """The directory holding the artifacts."""
        return self._root

    def path_of(self, code_hash: CodeHash) -> Path:
        """Where the artifact with ``code_hash`` lives."""
        value = str(code_hash)
        return self._root / value[:2] / f"{value}.json"

    # -- the port ----------------------------------------------------------------------------------

    def get(self, code_hash: CodeHash) -> Artifact | None:
        path = self.path_of(code_hash)
        data = self._read(path)
        if data is None:
            return None
        return self._decode(path, data, code_hash)

    def put(self, artifact: Artifact) -> bool:
        self._check(artifact)
        path = self.path_of(artifact.code_hash)
        if self._exists(path):
            return False
        data = _serde.dumps(artifact).encode()
        temp = self._write_temp(path.parent, artifact.code_hash, data)
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            raise self._error(f"cannot create {path}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        self._sync_dir(path.parent)
        return True

    def replace_report(self, code_hash: CodeHash, report: ValidationReport) -> Artifact:
        path = self.path_of(code_hash)
        # Under the shard's lock, so that a delete between reading and replacing is not undone.
        with self._locked(path.parent, missing_ok=False, code_hash=code_hash):
            current = self.get(code_hash)
            if current is None:
                raise NotFoundError("artifact", str(code_hash))
            updated = current.with_report(report)
            temp = self._write_temp(path.parent, code_hash, _serde.dumps(updated).encode())
            try:
                os.replace(temp, path)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise self._error(f"cannot replace {path}: {exc}") from exc
            self._sync_dir(path.parent)
            return updated

    def delete(self, code_hash: CodeHash) -> None:
        path = self.path_of(code_hash)
        with self._locked(path.parent, missing_ok=True, code_hash=code_hash):
            try:
                os.unlink(path)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise self._error(f"cannot delete {path}: {exc}") from exc
            self._sync_dir(path.parent)

    @contextlib.contextmanager
    def _locked(self, shard: Path, *, missing_ok: bool, code_hash: CodeHash) -> Iterator[None]:
        """An exclusive lock on ``shard`` (processes and threads alike) for read-then-write steps."""
        try:
            fd = os.open(shard / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            if missing_ok:
                yield  # no shard, so no artifact: nothing to lock
                return
            raise NotFoundError("artifact", str(code_hash)) from None
        except OSError as exc:
            raise self._error(f"cannot lock {shard}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def hashes(self) -> Iterator[CodeHash]:
        for shard, name in self._entries():
            match = _ARTIFACT.match(name)
            if match and match.group(1).startswith(shard.name):
                yield CodeHash(match.group(1))

    def _entries(self) -> Iterator[tuple[Path, str]]:
        """(shard folder, file name) of everything in the shards, in a stable order."""
        for shard in self._shards():
            try:
                entries = sorted(os.listdir(shard))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._error(f"cannot list {shard}: {exc}") from exc
            for name in entries:
                yield shard, name

    # -- repair helpers ----------------------------------------------------------------------------

    def stale_temp_files(self, older_than_s: float = 300.0) -> list[Path]:
        """Temp files left by writers that died, untouched for ``older_than_s`` seconds.

        A live writer's temp file is younger than that (it is renamed within one write), so listing
        with the default age is safe while other processes write.
        """
        cutoff = time.time() - older_than_s
        stale: list[Path] = []
        for shard, name in self._entries():
            if not name.startswith(_TEMP_PREFIX):
                continue
            path = shard / name
            try:
                if os.lstat(path).st_mtime <= cutoff:
                    stale.append(path)
            except FileNotFoundError:
                continue  # its writer finished meanwhile
        return stale

    def remove_stale_temp_files(self, older_than_s: float = 300.0) -> list[Path]:
        """Remove the files :meth:`stale_temp_files` lists; the paths removed."""
        removed: list[Path] = []
        for path in self.stale_temp_files(older_than_s):
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._error(f"cannot remove stale temp file {path}: {exc}") from exc
            removed.append(path)
            log.info("artifact_temp_file_removed", path=str(path))
        return removed

    # -- internals ---------------------------------------------------------------------------------

    def _error(self, message: str) -> StorageError:
        return StorageError(message, backend=self._backend)

    def _check(self, artifact: Artifact) -> None:
        actual = artifact.content_hash
        if actual != artifact.code_hash:
            raise self._error(f"refusing to store artifact {artifact.code_hash}: its code hashes to {actual}")

    def _shards(self) -> list[Path]:
        try:
            names = sorted(os.listdir(self._root))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._error(f"cannot list {self._root}: {exc}") from exc
        return [self._root / n for n in names if _SHARD.match(n) and not (self._root / n).is_symlink()]

    def _open_dir(self, directory: Path) -> int:
        # O_NOFOLLOW on the shard too: a symlinked shard could point anywhere on the machine.
        return os.open(directory, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)

    def _exists(self, path: Path) -> bool:
        try:
            os.lstat(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._error(f"cannot inspect {path}: {exc}") from exc
        return True

    def _read(self, path: Path) -> bytes | None:
        try:
            dir_fd = self._open_dir(path.parent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._link_error(path.parent, exc) from exc
        try:
            fd = os.open(path.name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._link_error(path, exc) from exc
        finally:
            os.close(dir_fd)
        try:
            with os.fdopen(fd, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise self._error(f"cannot read {path}: {exc}") from exc

    def _link_error(self, path: Path, exc: OSError) -> StorageError:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            return self._error(f"{path} is a symbolic link or not a regular entry; refusing to follow it")
        return self._error(f"cannot open {path}: {exc}")

    def _decode(self, path: Path, data: bytes, code_hash: CodeHash) -> Artifact:
        try:
            artifact = _serde.loads(data, Artifact)
        except ValueError as exc:
            raise self._error(f"artifact file {path} is malformed: {exc}") from exc
        if artifact.code_hash != code_hash:
            raise self._error(f"artifact file {path} holds {artifact.code_hash}, expected {code_hash}")
        actual = artifact.content_hash
        if actual != code_hash:
            raise self._error(f"artifact file {path} does not match its hash: its code hashes to {actual}")
        return artifact

    def _write_temp(self, directory: Path, code_hash: CodeHash, data: bytes) -> Path:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(f"cannot create {directory}: {exc}") from exc
        temp = directory / f"{_TEMP_PREFIX}{code_hash.short}-{os.getpid()}-{secrets.token_hex(6)}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, self._file_mode)
        except OSError as exc:
            raise self._error(f"cannot create temp file {temp}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise self._error(f"cannot write {temp}: {exc}") from exc
        return temp

    def _sync_dir(self, directory: Path) -> None:
        # Makes the new name durable; best effort where directories cannot be fsync'd.
        try:
            fd = self._open_dir(directory)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
