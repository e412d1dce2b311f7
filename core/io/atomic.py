"""Write files atomically: to a temporary file in the same folder, then ``os.replace``.

A reader (QGIS, a browser, another process) therefore sees either the previous file
or the complete new one, never a half-written file, even if the writer is cancelled
or crashes midway.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path``.

    Parameters
    ----------
    path : str or path-like
        Final file name. Its folder must exist.
    mode : {"w", "wb"}
        Text or binary writing.
    encoding : str
        Text encoding (ignored in binary mode).
    newline : str, optional
        As for :func:`open` (use ``""`` for the ``csv`` module).

    Examples
    --------
    >>> with atomic_open("/tmp/example.txt") as f:  # doctest: +SKIP
    ...     f.write("all or nothing")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes new files only (mode 'w' or 'wb'), not {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot write {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".part", dir=folder)
    try:
        if mode == "wb":
            f = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding=encoding, newline=newline)
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; make it readable like an ordinary output file
        # (os.umask is process-wide and not thread-safe, so it is not queried here).
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "w", encoding=encoding, newline="") as f:
        f.write(text)


def install_folder(built: PathLike, dest: PathLike, overwrite: bool, scratch: PathLike, what: str = "A model") -> str:
    """Move the finished folder ``built`` to ``dest`` (same file system: atomic renames).

    A folder already at ``dest`` is first moved into ``scratch`` and deleted only once the new one is in
    place; if that fails, it is put back. Raises :class:`~core.errors.InputError` when ``dest`` exists and
    ``overwrite`` is off (it appeared while the folder was built).
    """
    from ..errors import InputError
    built, dest, scratch = os.fspath(built), os.fspath(dest), os.fspath(scratch)
    previous = None
    if os.path.exists(dest):
        if not overwrite:
            raise InputError(f"{what} called '{os.path.basename(dest)}' appeared while training ({dest}); nothing "
                             "was replaced.", fix="run again with another name.")
        previous = os.path.join(scratch, ".previous")
        os.rename(dest, previous)
    try:
        os.rename(built, dest)
    except OSError:
        if previous is not None:
            os.rename(previous, dest)
        raise
    return dest
