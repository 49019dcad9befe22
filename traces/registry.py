"""Every known source family and dataset id, and the lookups the engine and CLI use."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from burstlab.errors import InputError
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


def samples() -> dict[str, tuple[Adapter, SourceFile]]:
    """Dataset ids that ship a real sample in the package."""
    return {k: v for k, v in source_ids().items() if v[1].sample}


def sample_path(source_id: str) -> Path:
    """The shipped sample file of a dataset id."""
    found = samples().get(source_id)
    if found is None:
        raise InputError(None, f"no shipped sample named {source_id!r}", expected=sorted(samples()))
    return SAMPLES_DIR / found[1].sample


def lookup(name: str) -> list[tuple[Adapter, SourceFile]]:
    """The datasets a name stands for: one for a dataset id, all of a family for a family."""
    ids = source_ids()
    if name in ids:
        return [ids[name]]
    fams = families()
    if name in fams:
        return [(a, s) for a in fams[name] for s in a.sources]
    raise InputError(
        None,
        f"unknown source {name!r}",
        expected=f"a family {sorted(fams)} or a dataset id {sorted(ids)}",
    )


def table_schema(kind: str) -> dict[str, pl.DataType]:
    """Schema of a table kind: canonical (burstlab.schema) or an adapter's auxiliary table."""
    if kind in SCHEMAS:
        return SCHEMAS[kind]
    for adapter in ADAPTERS:
        if adapter.table == kind and adapter.schema is not None:
            return dict(adapter.schema)
    raise InputError(None, f"unknown table {kind!r}", expected=table_kinds())


def table_kinds() -> list[str]:
    """Canonical table kinds first, then auxiliary ones, each once."""
    kinds = list(SCHEMAS)
    for adapter in ADAPTERS:
        if adapter.table not in kinds:
            kinds.append(adapter.table)
    return kinds
