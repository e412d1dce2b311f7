"""Checks of an output destination before any work: the folder can be written and has room.

A run that fails on its first write after an hour of fitting wastes the hour; these checks run
before anything is read or fitted.

Example
-------
>>> check_destination("/tmp/sm_1km.tif", need_bytes=estimate_raster_bytes(100, 100, 3))
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile

from ..errors import InputError


def estimate_raster_bytes(width: int, height: int, bands: int, rasters: int = 1) -> int:
    """Upper bound of the size of float32 GeoTIFFs of this shape: uncompressed, plus a third for overviews."""
    return int(4 * width * height * bands * rasters * 4 / 3)


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KB'`` (powers of 1000, as disk makers and file managers count).

    >>> format_bytes(2.5e9)
    '2.5 GB'
    """
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"


def check_destination(path: str, need_bytes: int = 0, what: str = "output") -> None:
    """Raise :class:`InputError` unless ``path``'s folder can be written and holds ``need_bytes`` more.

    A folder that does not exist yet is fine when its nearest existing parent can be written
    (the writers create it). Writability is tried with a temporary file, since permission bits
    do not tell the whole story (read-only mounts, network shares, root on a read-only disk).
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    existing = folder
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        raise InputError(problem=f"{what}: its folder cannot be created: '{existing}' is a file, not a folder.",
                         fix="choose an output file in a folder you can write to.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".smds-write-test-", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        raise InputError(problem=f"{what}: the folder '{existing}' cannot be written ({reason}).",
                         fix="choose an output file in a folder you can write to (e.g. in your home folder).") from None
    if need_bytes > 0:
        free = shutil.disk_usage(existing).free
        if free < need_bytes:
            raise InputError(problem=f"{what}: the output needs up to {format_bytes(need_bytes)} but only "
                             f"{format_bytes(free)} are free on the disk of '{existing}'.",
                             fix="free some space, write to another disk, or make the output smaller (a coarser "
                             "resolution, a smaller area or fewer dates).")
