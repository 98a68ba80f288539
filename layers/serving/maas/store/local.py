"""The local backend: a directory with the guarantees S3 gives."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from maas.errors import NotFound, PreconditionFailed, StoreUnavailable
from maas.store.base import ObjectInfo, Progress, Store, StoredObject, check_key


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore(Store):
    """A directory with S3's guarantees.

    Writes go to a hidden temporary file in the target directory, are fsynced,
    then appear atomically: ``os.link`` for create-if-absent (it fails if the
    name exists), ``os.replace`` otherwise. Compare-and-swap holds an exclusive
    ``flock`` on a per-key lock file while it compares and replaces, so it is
    safe across threads and processes on one machine. Names starting with ``.``
    are internal and never listed.
    """

    _CHUNK = 1 << 20

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    @contextlib.contextmanager
    def _io(self, key: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as exc:
            raise NotFound(f"{self.url}/{key} does not exist") from exc
        except NotADirectoryError as exc:
            raise NotFound(f"{self.url}/{key} does not exist") from exc
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise PreconditionFailed(f"{self.url}/{key} already exists") from exc
            raise StoreUnavailable(f"I/O error on {self.url}/{key}: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        with (locks / f"{name}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _temp_beside(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.parent / f".tmp-{path.name}-{uuid.uuid4().hex}"

    def _publish(
        self, temp: Path, path: Path, key: str, if_none_match: bool, if_match: str | None
    ) -> None:
        if if_none_match:
            os.link(temp, path)  # atomic create-if-absent; EEXIST if taken
        else:
            with self._locked(key):
                if if_match is not None:
                    current = self.head(key)
                    if current is None or current.etag != if_match:
                        raise PreconditionFailed(
                            f"{self.url}/{key} changed since it was read (ETag mismatch)"
                        )
                temp.replace(path)
        _fsync_dir(path.parent)

    def require_existing(self) -> None:
        if not self.root.exists():
            raise NotFound(
                f"registry {self.root} does not exist (only `maas publish` creates one): "
                "check --registry or MAAS_REGISTRY"
            )
        if not (self.root / "models").is_dir():
            raise NotFound(f"{self.root} is not a maas registry: it has no models/ directory")

    def get(self, key: str) -> StoredObject:
        with self._io(key):
            data = self._path(key).read_bytes()
        return StoredObject(data, _etag(data))

    def get_if_changed(self, key: str, etag: str) -> StoredObject | None:
        found = self.get(key)
        return None if found.etag == etag else found

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        path = self._path(key)
        with self._io(key):
            temp = self._temp_beside(path)
            try:
                with temp.open("wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                self._publish(temp, path, key, if_none_match, if_match)
            finally:
                temp.unlink(missing_ok=True)
        return _etag(data)

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            with self._io(key):
                digest = hashlib.md5(usedforsecurity=False)
                size = 0
                with path.open("rb") as handle:
                    while chunk := handle.read(self._CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
        except NotFound:
            return None
        return ObjectInfo(size, f'"{digest.hexdigest()}"')

    def list_keys(self, prefix: str) -> Iterator[str]:
        # Walk only the directory the prefix names, then filter like S3 does.
        base = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        found: list[str] = []
        for directory, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.startswith("."):
                    continue
                key = Path(directory, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        yield from sorted(found)

    def list_dirs(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        try:
            entries = list(base.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise StoreUnavailable(f"I/O error listing {self.url}/{prefix}: {exc}") from exc
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))

    def upload_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        target = self._path(key)
        with self._io(key):
            temp = self._temp_beside(target)
            try:
                _copy(path, temp, progress)
                self._publish(temp, target, key, if_none_match=True, if_match=None)
            finally:
                temp.unlink(missing_ok=True)

    def download_file(self, key: str, path: Path, progress: Progress | None = None) -> None:
        source = self._path(key)
        with self._io(key):
            if not source.is_file():
                raise FileNotFoundError(source)
            temp = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex}"
            try:
                _copy(source, temp, progress)
                temp.replace(path)
            finally:
                temp.unlink(missing_ok=True)


def _copy(source: Path, target: Path, progress: Progress | None) -> None:
    with source.open("rb") as reader, target.open("wb") as writer:
        if progress is None:
            shutil.copyfileobj(reader, writer, LocalStore._CHUNK)
        else:
            while chunk := reader.read(LocalStore._CHUNK):
                writer.write(chunk)
                progress(len(chunk))
        writer.flush()
        os.fsync(writer.fileno())
