"""Atomic file writes with named storage errors.

Every artifact is written to a temporary file beside its target and renamed over it, so a
reader never sees half a file and an interrupted or failed write leaves the previous version
intact. A full disk, a read-only folder or a missing permission becomes a :class:`StorageError`
that names the path and what was being written, instead of a bare ``OSError`` traceback.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write_text(p, "hello", what="a greeting")
    >>> p.read_text()
    'hello'
"""
from __future__ import annotations

import errno
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


class StorageError(OSError):
    """A file could not be written; the message names the path, what it was and why."""

    def __init__(self, path: Path | str, what: str, cause: OSError):
        self.path, self.what, self.cause = Path(path), what, cause
        reason = _REASONS.get(cause.errno or 0, cause.strerror or type(cause).__name__)
        super().__init__(cause.errno, f"cannot write {what} to {path}: {reason}. Files written "
                                      "before this one are intact; free space or fix the "
                                      "permission and run the same command again to resume")

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.path, self.what, self.cause))


@contextmanager
def atomic_path(path: Path | str, *, what: str = "a file") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    The temporary file keeps ``path``'s suffix (``x.tmp.npz``), as some writers append one.

    Raises:
        StorageError: the folder cannot be created or the file cannot be written.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        if isinstance(exc, StorageError):
            raise
        raise StorageError(path, what, exc) from exc
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def atomic_write_bytes(path: Path | str, data: bytes, *, what: str = "a file") -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, what=what) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: Path | str, text: str, *, what: str = "a file") -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), what=what)


def atomic_write_with(path: Path | str, writer: Callable[[Path], None], *, what: str) -> None:
    """Call ``writer(tmp_path)`` and rename the result over ``path`` atomically.

    Example:
        >>> # atomic_write_with(p, lambda t: df.to_csv(t, index=False), what="Table 3")
    """
    with atomic_path(path, what=what) as tmp:
        writer(tmp)


def write_csv(df, path: Path | str, *, what: str) -> None:
    """A DataFrame as CSV (no index), atomically."""
    atomic_write_with(path, lambda t: df.to_csv(t, index=False), what=what)


def sha256_file(path: Path | str, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
