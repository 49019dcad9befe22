"""Atomic outputs: a reader (or a crash) sees the old output or the whole new one, never half.

Every file burstlab writes goes through `staged_file` (a unique hidden temp file in the
destination's folder, renamed into place when the block succeeds, removed when it fails), and
every multi-file output (a card, a run folder, a capacity search) through `staged_dir` (the
same for a whole folder). `write_text` and `write_json` are the one-liners on top.

JSON is written with ``allow_nan=False``: a NaN or ±inf in a written number is an error, never
a ``NaN`` token that strict JSON readers reject. Callers turn "not available" into None first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from burstlab.errors import UsageError


@contextlib.contextmanager
def staged_file(dest: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `dest`; on success it is renamed to `dest`, on failure removed.

    The temp name starts with "." and is unique (several writers never collide), and it lives
    in the same folder, so the rename is atomic on every POSIX file system."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(dest: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `dest` atomically; returns `dest`."""
    dest = Path(dest)
    with staged_file(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return dest


def write_json(dest: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Write `obj` as strict JSON (no NaN/inf: ValueError) to `dest` atomically."""
    text = json.dumps(obj, indent=indent, allow_nan=False, default=str)
    return write_text(dest, text + "\n")


def check_out(dest: str | Path, *, overwrite: bool = False, param: str = "out") -> Path:
    """The one overwrite policy: refuse an existing, non-empty `dest` unless `overwrite`.

    Call it before any work starts, so a refused run costs nothing. An empty folder counts as
    absent (a user may create the folder first)."""
    dest = Path(dest)
    exists = dest.is_file() or (dest.is_dir() and any(dest.iterdir()))
    if exists and not overwrite:
        raise UsageError(
            f"{dest} already exists; choose another path or allow replacing it (overwrite)",
            param=param,
        )
    return dest


@contextlib.contextmanager
def staged_dir(dest: str | Path, *, overwrite: bool = False, param: str = "out") -> Iterator[Path]:
    """Yield an empty hidden folder beside `dest` to write a multi-file output into; when the
    block succeeds it replaces `dest` (the old one, if `overwrite`, is removed only then), when
    it fails it is removed and `dest` is untouched."""
    dest = check_out(dest, overwrite=overwrite, param=param)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        if dest.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            os.replace(dest, old / dest.name)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if dest.exists():
                dest.unlink()
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
