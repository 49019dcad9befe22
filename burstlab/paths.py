"""Where burstlab keeps its data: Parquet files, the DuckDB catalog, downloads, run outputs."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_VAR = "BURSTLAB_DATA_DIR"


def data_dir(override: str | Path | None = None) -> Path:
    """The data directory: `override`, else $BURSTLAB_DATA_DIR, else a per-user cache dir.

    Created on first use so every caller can write into it directly.
    """
    if override is not None:
        path = Path(override)
    elif os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR])
    else:
        path = Path(platformdirs.user_cache_dir("burstlab"))
    path = path.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def catalog_path(root: str | Path | None = None) -> Path:
    """The DuckDB catalog file inside the data directory."""
    return data_dir(root) / "catalog.duckdb"


def parquet_dir(root: str | Path | None = None, kind: str = "requests") -> Path:
    """Folder of one canonical table kind: <data>/parquet/<kind>/<source>.parquet."""
    path = data_dir(root) / "parquet" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def downloads_dir(root: str | Path | None = None) -> Path:
    """Where `burstlab fetch` keeps raw downloads (resumable, sha256-checked)."""
    path = data_dir(root) / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path
