"""Every known source family and dataset id, and the lookups the engine and CLI use."""

from __future__ import annotations

from pathlib import Path

from burstlab.traces import azure_llm, burstgpt, mooncake
from burstlab.traces.adapter import Adapter, SourceFile

from burstlab.errors import InputError

ADAPTERS: tuple[Adapter, ...] = (azure_llm.ADAPTER, burstgpt.ADAPTER, mooncake.ADAPTER)

#: Samples shipped in the package (real bytes): source id -> path under traces/samples/.
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def families() -> dict[str, Adapter]:
    """Family name -> adapter."""
    return {a.family: a for a in ADAPTERS}


def source_ids() -> dict[str, tuple[Adapter, SourceFile]]:
    """Every dataset id -> (adapter, its SourceFile)."""
    return {s.id: (a, s) for a in ADAPTERS for s in a.sources}


def samples() -> dict[str, tuple[Adapter, SourceFile]]:
    """Dataset ids that ship a real sample in the package."""
    return {k: v for k, v in source_ids().items() if v[1].sample}


def sample_path(source_id: str) -> Path:
    """The shipped sample file of a dataset id."""
    try:
        _, src = samples()[source_id]
    except KeyError:
        raise InputError(
            None, f"no shipped sample named {source_id!r}", expected=sorted(samples())
        ) from None
    return SAMPLES_DIR / src.sample


def lookup(name: str) -> tuple[Adapter, SourceFile | None]:
    """Resolve a dataset id (→ adapter and its file) or a family name (→ adapter, None)."""
    ids = source_ids()
    if name in ids:
        return ids[name]
    fams = families()
    if name in fams:
        return fams[name], None
    raise InputError(
        None,
        f"unknown source {name!r}",
        expected=f"a family {sorted(fams)} or a dataset id {sorted(ids)}",
    )


def match_file(adapter: Adapter, path: Path) -> SourceFile | None:
    """The dataset of `adapter` whose official file name `path` carries (None when none does)."""
    name = path.name
    for src in sorted(adapter.sources, key=lambda s: -len(s.filename)):
        stem = src.filename.split(".")[0]
        if name == src.filename or name.split(".")[0] == stem:
            return src
    return None
