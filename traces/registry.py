"""Every known source family and dataset id, and the lookups the engine, the CLI and later
stages use (`source_info` is on the traces face: what a dataset card says about a source)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from burstlab.errors import UsageError
from burstlab.schema import SCHEMAS
from burstlab.traces import azure_functions, azure_llm, burstgpt, huawei, mooncake
from burstlab.traces.adapter import Adapter, SourceFile

ADAPTERS: tuple[Adapter, ...] = (
    azure_llm.ADAPTER,
    burstgpt.ADAPTER,
    mooncake.ADAPTER,
    *azure_functions.ADAPTERS,
    *huawei.ADAPTERS,
)

#: Real samples shipped in the package live here (see each folder's PROVENANCE.md).
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def families() -> dict[str, list[Adapter]]:
    """Family name -> its adapters (a family may map onto several tables)."""
    out: dict[str, list[Adapter]] = {}
    for adapter in ADAPTERS:
        out.setdefault(adapter.family, []).append(adapter)
    return out


def source_ids() -> dict[str, tuple[Adapter, SourceFile]]:
    """Every dataset id -> (adapter, its SourceFile)."""
    return {s.id: (a, s) for a in ADAPTERS for s in a.sources}


@dataclass(frozen=True)
class SourceInfo:
    """What burstlab knows about one dataset id: where it comes from, its terms, its caveats.

    `caveats` are what the source's documentation (or reading its files) says a user must
    know, one sentence each: the family's (`Adapter.caveats`), then the dataset's own.
    """

    id: str
    family: str
    table: str  # canonical (or auxiliary) table kind the rows map onto
    licence: str
    citation: str
    homepage: str
    url: str | None  # official download URL (None: no direct link)
    caveats: tuple[str, ...]


def source_info(source_id: str) -> SourceInfo | None:
    """The `SourceInfo` of a known dataset id; None for an id no adapter declares (a generic
    ingest, a synthetic table, a file renamed by hand)."""
    found = source_ids().get(source_id)
    if found is None:
        return None
    adapter, src = found
    return SourceInfo(
        id=src.id,
        family=adapter.family,
        table=adapter.table,
        licence=adapter.licence,
        citation=adapter.citation,
        homepage=adapter.homepage,
        url=src.url,
        caveats=(*adapter.caveats, *src.caveats),
    )


def samples() -> dict[str, tuple[Adapter, SourceFile]]:
    """Dataset ids that ship a real sample in the package."""
    return {k: v for k, v in source_ids().items() if v[1].sample}


def sample_path(source_id: str) -> Path:
    """The shipped sample file of a dataset id."""
    found = samples().get(source_id)
    sample = None if found is None else found[1].sample
    if sample is None:
        raise UsageError(
            f"no shipped sample named {source_id!r}; expected one of {sorted(samples())}",
            param="source",
        )
    return SAMPLES_DIR / sample


def lookup(name: str) -> list[tuple[Adapter, SourceFile]]:
    """The datasets a name stands for: one for a dataset id, all of a family for a family."""
    ids = source_ids()
    if name in ids:
        return [ids[name]]
    fams = families()
    if name in fams:
        return [(a, s) for a in fams[name] for s in a.sources]
    raise UsageError(
        f"unknown source {name!r}; expected a family {sorted(fams)} or a dataset id {sorted(ids)}",
        param="source",
    )


def table_schema(kind: str) -> dict[str, pl.DataType]:
    """Schema of a table kind: canonical (burstlab.schema) or an adapter's auxiliary table."""
    if kind in SCHEMAS:
        return SCHEMAS[kind]
    for adapter in ADAPTERS:
        if adapter.table == kind and adapter.schema is not None:
            return dict(adapter.schema)
    raise UsageError(f"unknown table {kind!r}; expected one of {table_kinds()}", param="kind")


def table_kinds() -> list[str]:
    """Canonical table kinds first, then auxiliary ones, each once."""
    kinds = list(SCHEMAS)
    for adapter in ADAPTERS:
        if adapter.table not in kinds:
            kinds.append(adapter.table)
    return kinds
