"""Unpack trace archives (``.tar.xz`` / ``.tar.gz`` / ``.tar``, ``.zip``, ``.rar``) into a work
folder, one member at a time, so a 14-day archive never has to fit in memory.

RAR has no maintained pure-Python reader (``rarfile`` itself shells out to a tool), so burstlab
calls the first extractor it finds on PATH: ``bsdtar`` (libarchive), ``unrar``, ``7z``,
``unar``. With none installed the error says what to install, or to pass the extracted file.
"""

from __future__ import annotations

import lzma
import shutil
import subprocess
import tarfile
import zipfile
import zlib
from pathlib import Path

from burstlab.errors import InputError

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar.zst")
#: (binary, argv builder) in order of preference.
RAR_TOOLS: tuple[tuple[str, list[str]], ...] = (
    ("bsdtar", ["-xf", "{archive}", "-C", "{dest}"]),
    ("unrar", ["x", "-o+", "-inul", "{archive}", "{dest}/"]),
    ("7z", ["x", "-y", "-o{dest}", "{archive}"]),
    ("unar", ["-q", "-f", "-o", "{dest}", "{archive}"]),
)


def is_archive(path: Path) -> bool:
    """Whether `path` is an archive of several files (not a single compressed stream)."""
    name = path.name.lower()
    return name.endswith((*_TAR_SUFFIXES, ".zip", ".rar"))


def unpack(path: Path, dest: Path) -> list[Path]:
    """Extract every regular file of archive `path` into `dest`; returns the files, sorted.

    Member folders are kept (Huawei encodes the region as ``R1/…``). Raises InputError for a
    truncated or corrupt archive, naming it.
    """
    name = path.name.lower()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if name.endswith(".rar"):
            _unrar(path, dest)
        elif name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if not info.is_dir():
                        _copy_member(zf.open(info), dest, info.filename, path)
        else:
            with tarfile.open(path, "r|*") as tar:  # stream mode: one pass, bounded memory
                for member in tar:
                    if member.isfile():
                        _copy_member(tar.extractfile(member), dest, member.name, path)
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        lzma.LZMAError,
        OSError,
        zlib.error,  # a damaged deflate stream inside a zip member
        NotImplementedError,  # a zip member compressed with a method Python lacks
        RuntimeError,  # an encrypted zip member
    ) as exc:
        raise InputError(
            path, f"cannot unpack archive ({exc}); is the download complete and undamaged?"
        ) from None
    return sorted(p for p in dest.rglob("*") if p.is_file())


def _copy_member(stream, dest: Path, member: str, archive: Path) -> None:
    target = (dest / member).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise InputError(archive, f"archive member escapes the folder: {member!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with stream as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, length=1 << 22)


def _unrar(path: Path, dest: Path) -> None:
    for tool, argv in RAR_TOOLS:
        binary = shutil.which(tool)
        if binary is None:
            continue
        args = [a.format(archive=path, dest=dest) for a in argv]
        done = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise InputError(path, f"{tool} could not extract it: {done.stderr.strip()[:300]}")
        return
    raise InputError(
        path,
        "RAR archives need an extractor on PATH",
        expected="one of bsdtar (apt install libarchive-tools), unrar, 7z (p7zip-full) or unar; "
        "or extract it yourself and pass the .txt/.csv inside",
        found="none",
    )
