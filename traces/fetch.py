"""`burstlab fetch`: download a dataset's official file, resumable, with progress and checksum.

The file lands in ``<data-dir>/downloads/<official name>``; `burstlab ingest <id>` then reads it
with no further arguments. A partial download is kept as ``<name>.part`` and resumed with an
HTTP Range request; a server that ignores Range restarts it cleanly. When the sha256 (or size)
of the official file is known — BurstGPT's from its Git LFS pointers, the Azure 2023 CSVs' from
the provenance files — the download is checked and a mismatch is an error that leaves no file.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from burstlab.errors import InputError, UsageError
from burstlab.paths import downloads_dir
from burstlab.progress import progress
from burstlab.traces import registry
from burstlab.traces.ingest import sha256_file

CHUNK = 1 << 20


@dataclass
class FetchResult:
    """What `fetch` did: the file, its sha256, bytes transferred now, and whether it resumed."""

    source: str
    path: Path
    sha256: str
    bytes_total: int
    bytes_downloaded: int  # in this call (0 when the file was already complete)
    resumed_from: int  # byte offset a partial download was resumed at (0: fresh)
    verified: bool  # the sha256 was known and matched


def fetch(
    source: str,
    data_dir: str | Path | None = None,
    *,
    mirror: str | None = None,
    sha256: str | None = None,
    quiet: bool = False,
    timeout_s: float = 60.0,
) -> FetchResult:
    """Download dataset `source` (a dataset id) into the downloads folder.

    `mirror` replaces the official URL; `sha256` overrides the known hash.
    """
    found = registry.lookup(source)
    if len(found) != 1:
        raise UsageError(
            f"{source!r} is a family; fetch one of its datasets {[s.id for _, s in found]}",
            param="source",
        )
    adapter, src = found[0]
    url = mirror or src.url
    if not url:
        raise UsageError(
            f"{src.id} has no direct download link; download it from {adapter.homepage} and "
            "ingest the file, or give a mirror",
            param="source",
        )
    want = (sha256 or src.sha256 or "").lower() or None
    dest = downloads_dir(data_dir) / src.filename
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        have = sha256_file(dest)
        if want is None or have == want:
            return FetchResult(src.id, dest, have, dest.stat().st_size, 0, 0, want is not None)
        dest.unlink()  # a stale or corrupt copy: fetch again
    offset = part.stat().st_size if part.exists() else 0
    downloaded, resumed = _download(url, part, offset, quiet=quiet, timeout_s=timeout_s)
    size = part.stat().st_size
    if src.size is not None and url == src.url and size != src.size:
        part.unlink()
        raise InputError(dest, "download has the wrong size", expected=src.size, found=size)
    have = sha256_file(part)
    if want is not None and have != want:
        part.unlink()
        raise InputError(dest, f"sha256 mismatch for {url}", expected=want, found=have)
    os.replace(part, dest)
    return FetchResult(src.id, dest, have, size, downloaded, resumed, want is not None)


def _download(
    url: str, part: Path, offset: int, *, quiet: bool, timeout_s: float
) -> tuple[int, int]:
    """Stream `url` into `part` from byte `offset`; returns (bytes written, resumed offset)."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            resumed = offset if response.status == 206 else 0
            length = response.headers.get("Content-Length")
            total = resumed + int(length) if length and length.isdigit() else None
            written = 0
            with (
                open(part, "ab" if resumed else "wb") as out,
                progress(disable=quiet, transient=True) as bar,
            ):
                task = bar.add_task(f"fetch {part.name.removesuffix('.part')}", total=total)
                bar.update(task, completed=resumed)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(task, advance=len(chunk))
            return written, resumed
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the part is complete
            return 0, offset
        raise InputError(part, f"download failed: HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise InputError(
            part, f"download of {url} failed ({exc}); run fetch again to resume"
        ) from None
