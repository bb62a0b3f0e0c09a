"""Which files alnm agrees to read: inside the cohort folder, regular files and folders only,
walks bounded.

A cohort manifest is data someone else may have written. Its ``<SEQ>_image`` / ``<SEQ>_roi``
paths are resolved (symlinks followed) and must stay inside the cohort folder unless the user
allows otherwise (``input.allow_outside_cohort``); a named pipe, a device or a socket is never
opened (opening a FIFO blocks for ever, a device streams for ever); a folder is walked up to
``input.max_files`` entries, never the whole file system. The readers (:mod:`alnm_core.dicom`,
:mod:`alnm_core.imaging`) refuse non-regular files and bound their walks on their own; the
containment rule needs the cohort folder, so :mod:`alnm_core.cohort` applies it to every path of
a manifest before anything is read. ``docs/security.md`` says what this covers and what not.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> outside_cohort(root, "../elsewhere/P1/T2WI") is not None
    True
    >>> outside_cohort(root, "P1/T2WI") is None
    True
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from .config import DEFAULT_MAX_FILES
from .volume import ImageReadError

#: the words every outside-the-cohort refusal carries
OUTSIDE = "outside the cohort folder"
ALLOW_HINT = ("for a collection stored elsewhere that you trust, pass --trust FOLDER "
              "(input.trusted_folders); --allow-outside-cohort (input.allow_outside_cohort=true) "
              "lets every path through: only for a manifest you wrote yourself")

class RefusedPath(ImageReadError):
    """A path alnm will not read: ``path`` and ``reason`` (the message is ``"path: reason"``)."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.path, self.reason))


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def kind(path: str | Path) -> str:
    """What ``path`` is, links followed: ``file``, ``folder``, ``missing``, ``a broken link``,
    ``a link loop``, ``a named pipe (FIFO)``, ``a socket``, ``a character device``,
    ``a block device`` or ``something other than a file``; never opens it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken link" if os.path.islink(path) else "missing"
    except OSError as exc:
        return "a link loop" if exc.errno == 40 else f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return next((name for test, name in _KINDS if test(mode)), "something other than a file")


def refuse_special(path: str | Path) -> None:
    """Raise :class:`ImageReadError` naming ``path`` unless it is a regular file or a folder.

    Raises:
        RefusedPath: a FIFO, socket, device, broken link, link loop, or missing path.
    """
    k = kind(path)
    if k == "missing":
        raise RefusedPath(path, "not found")
    if k not in ("file", "folder"):
        raise RefusedPath(path, f"is {k}, not a regular file or folder; alnm reads only regular "
                                "files and folders")


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (resolved, links followed) lies in ``root`` (resolved)."""
    real, top = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return real == top or top in real.parents


def inside_any(path: str | Path, roots) -> bool:
    """Whether ``path`` (resolved) lies in one of ``roots`` (a folder or several)."""
    roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
    return any(is_inside(Path(path), Path(r)) for r in roots)


def outside_cohort(root: str | Path, rel: str | Path, *, trusted=()) -> str | None:
    """Why ``root / rel`` is outside the cohort folder ``root`` and the ``trusted`` folders
    (None when it is inside one of them).

    An absolute ``rel``, ``..`` components and symbolic links are all resolved first, so a link
    inside the cohort that points out of it is outside.
    """
    root = Path(root)
    path = root / rel
    if inside_any(path, [root, *trusted]):
        return None
    also = (f" or the trusted folder(s) {', '.join(os.path.realpath(t) for t in trusted)}"
            if trusted else "")
    return (f"resolves to {os.path.realpath(path)}, {OUTSIDE} {os.path.realpath(root)}{also}; alnm "
            f"reads only files inside the cohort folder ({ALLOW_HINT})")


def _too_many(folder: Path, limit: int) -> RefusedPath:
    return RefusedPath(folder, f"holds more than {limit:,} files and folders (a series folder "
                          "holds a few thousand at most: is it the right folder? The limit is "
                          "input.max_files)")


def walk_files(folder: str | Path, *, max_files: int | None = None,
               within: str | Path | tuple | list | None = None) -> list[Path]:
    """Every regular file below ``folder``, sorted; names starting with a dot are left out and
    linked folders are not entered.

    Args:
        folder: the folder.
        max_files: the most entries (files and folders) below it (default
            :data:`~alnm_core.config.DEFAULT_MAX_FILES`).
        within: if given, every link below ``folder`` (to a file or a folder) must resolve
            inside this folder (the cohort folder), or one of these folders.

    Raises:
        RefusedPath: naming the entry: a FIFO, socket, device, broken link or link loop,
            a link out of ``within``; or more than ``max_files`` entries below the folder.
    """
    limit = DEFAULT_MAX_FILES if max_files is None else max_files
    folder = Path(folder)
    out: list[Path] = []
    seen = 0
    for top, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        names = sorted(n for n in names if not n.startswith("."))
        seen += len(dirs) + len(names)
        if seen > limit:
            raise _too_many(folder, limit)
        for n in dirs + names:
            p = Path(top, n)
            if within is not None and os.path.islink(p) and not inside_any(p, within):
                roots = [within] if isinstance(within, (str, Path)) else list(within)
                raise RefusedPath(p, outside_cohort(roots[0], p, trusted=roots[1:]) or OUTSIDE)
        for n in names:
            p = Path(top, n)
            refuse_special(p)
            out.append(p)
    return out


def check_path(root: str | Path, rel: str, *, allow_outside: bool = False, trusted=(),
               max_files: int | None = None) -> tuple[Path, str] | None:
    """The first reason not to read the manifest path ``rel`` of the cohort folder ``root``:
    ``(file, message)``, or None when it may be read.

    Checked without opening anything but NRRD headers: ``root / rel`` resolves inside ``root``
    or one of the ``trusted`` folders (unless ``allow_outside``), exists, and is a regular file
    or a folder; below a folder, no FIFO, device or socket, no link out of those folders, at
    most ``max_files`` entries; a detached NRRD header's data files obey the same rules.

    Example:
        >>> import tempfile, pathlib
        >>> check_path(pathlib.Path(tempfile.mkdtemp()), "P1/T2WI")[1]
        'file or folder not found'
    """
    root = Path(root)
    path = root / rel
    if "\x00" in str(rel):
        return path, "holds a NUL character: not a path"
    if not allow_outside and (why := outside_cohort(root, rel, trusted=trusted)):
        return path, why
    k = kind(path)
    if k == "missing":
        return path, "file or folder not found"
    if k not in ("file", "folder"):
        return path, f"is {k}, not a regular file or folder; alnm reads only regular files and folders"
    if k == "file":
        for data in nrrd_data_files(path):
            if not allow_outside and not inside_any(data, [root, *trusted]):
                return data, f"the data file its NRRD header names {outside_cohort(root, data, trusted=trusted)}"
            if kind(data) != "file":
                return data, f"the data file its NRRD header names is {kind(data)}, not a regular file"
        return None
    try:
        walk_files(path, max_files=max_files, within=None if allow_outside else [root, *trusted])
    except RefusedPath as exc:
        return exc.path, exc.reason
    return None


# ----------------------------------------------------------------------------- NRRD
_NRRD_FIELD = re.compile(r"^\s*data\s?file\s*:\s*(.*?)\s*$", re.IGNORECASE)


def nrrd_data_files(path: str | Path, *, max_header_bytes: int = 1 << 20) -> list[Path]:
    """The data files a NRRD header names (``data file:``), resolved from its folder; empty for
    a NRRD with its data attached, or a file that is not NRRD.

    A detached header (``.nhdr``, or a ``.nrrd`` with a ``data file`` field) makes the reader
    open whatever file it names, anywhere: the cohort check treats them as paths of the
    manifest. Handles a single name, ``LIST`` (one name a line after the header) and a
    ``printf`` pattern with ``min max step``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"NRRD":
                return []
            head = fh.read(max_header_bytes)
    except OSError:
        return []
    text = head.decode("latin-1")
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip() == "":
            break
        m = _NRRD_FIELD.match(line)
        if not m:
            continue
        spec = m.group(1)
        if spec.upper().startswith("LIST"):
            names = [ln.strip() for ln in lines[i + 1:] if ln.strip()]
        else:
            parts = spec.split()
            if len(parts) >= 4 and "%" in parts[0]:
                try:
                    lo, hi, step = (int(v) for v in parts[1:4])
                    names = [parts[0] % k for k in range(lo, hi + (1 if step > 0 else -1), step or 1)][:10000]
                except (ValueError, TypeError):
                    names = [parts[0]]
            else:
                names = [spec]
        return [path.parent / n for n in names]
    return []
