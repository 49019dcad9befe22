"""mkdocs hook: fill the nav's "Sources" section with every page in `docs/sources/`.

The traces stage adds one page per source it can ingest; listing them here by hand would let
the nav fall behind the adapters. `docs/sources/index.md` (if any) comes first, then the rest
in file-name order. A nav without a "Sources" entry is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SECTION = "Sources"


def source_pages(docs_dir: str | Path) -> list[str]:
    """Nav entries (paths relative to docs/) for the per-source pages, index first."""
    folder = Path(docs_dir) / "sources"
    pages = sorted(folder.glob("*.md"), key=lambda p: (p.stem != "index", p.name))
    return [p.relative_to(docs_dir).as_posix() for p in pages]


def on_config(config: Any) -> Any:
    """mkdocs event: replace the Sources section's contents (drop it when there are none)."""
    nav = config.nav or []
    pages = source_pages(config.docs_dir)
    for i, item in enumerate(nav):
        if isinstance(item, dict) and SECTION in item:
            if pages:
                nav[i] = {SECTION: pages}
            else:
                del nav[i]
            break
    return config
