"""`burstlab card`: turn a source, a synthetic workload or a replay run into a dataset card.

A card is a directory ready to publish (e.g. `huggingface-cli upload`): `README.md` in the
Hugging Face dataset-card format (YAML front matter validated offline), the Parquet data and
the charts (PNG + SVG). What the target is decides the card:

- a dataset id (`azure-llm-2023-conv`) or a canonical Parquet file → a SOURCE card;
- a Parquet file that synth wrote (`source` = ``synth:…``) → a SYNTHETIC card;
- a workload spec JSON (``"burstlab_spec": 1``) → a SPEC card;
- a replay run directory (with `run.json`) → a RUN card.

Cards are the last stage (publish): they may read every earlier stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pyarrow as pa

from burstlab import traces
from burstlab.cards.hf import CardResult, hub, publish
from burstlab.cards.run import run_card
from burstlab.cards.source import source_card
from burstlab.cards.synth import spec_card, synth_parquet_card
from burstlab.errors import InputError
from burstlab.parquet import read_metadata

CardKind = Literal["source", "synth", "spec", "run"]


def card_kind(target: str | Path) -> tuple[CardKind, Path | None]:
    """What kind of card `target` makes, and the file or folder it names (None: a dataset id)."""
    path = Path(target)
    if path.is_dir():
        if (path / "run.json").is_file():
            return "run", path
        raise InputError(
            path,
            "a directory is a card target only when it is a replay run",
            expected="run.json inside it",
        )
    if path.is_file():
        if path.suffix == ".parquet":
            source = str(_metadata(path).get("source") or "")
            return ("synth" if source.startswith("synth:") else "source"), path
        if path.suffix == ".json":
            if not _is_spec(path):
                raise InputError(
                    path, "not a workload spec", expected='a JSON object with "burstlab_spec"'
                )
            return "spec", path
        raise InputError(
            path,
            "unsupported card target",
            expected="a .parquet, a spec .json or a run directory",
            found=path.suffix or "no suffix",
        )
    if path.suffix or "/" in str(target):
        raise InputError(path, "no such file or directory")
    return "source", None


def card(
    target: str | Path,
    out_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    seed: int = 0,
    duration_s: float | None = None,
    spec: str | Path | None = None,
) -> CardResult:
    """Write the card for `target` (see the module docstring) into the folder `out_dir`.

    `data_dir` is where ingested datasets live (a dataset id is looked up there). For a spec,
    `seed` and `duration_s` (default: the span the spec was fitted on) pick the workload the
    card publishes; for a synthetic Parquet file, `spec` is the spec that generated it (adds
    the spec and the fidelity report). Returns the written card with its validation result.

    The card is built in a hidden sibling folder and renamed to `out_dir` only when it is
    complete and valid: an existing non-empty `out_dir` is refused (UsageError) unless
    `overwrite` (then replaced whole); a failed or invalid card (BurstlabError) leaves
    `out_dir` as it was.
    """
    hub()  # MissingExtraError before any work when the extra that writes cards is missing
    kind, path = card_kind(target)
    if kind == "source":
        parquet = path if path is not None else traces.parquet_path(str(target), data_dir)
        return publish(out_dir, lambda out: source_card(parquet, out), overwrite=overwrite)
    assert path is not None  # card_kind names a file or folder for every kind but "source"
    if kind == "run":
        return publish(out_dir, lambda out: run_card(path, out), overwrite=overwrite)
    if kind == "spec":
        return publish(
            out_dir,
            lambda out: spec_card(path, out, seed=seed, duration_s=duration_s, data_dir=data_dir),
            overwrite=overwrite,
        )
    return publish(
        out_dir,
        lambda out: synth_parquet_card(path, out, spec_path=spec, data_dir=data_dir),
        overwrite=overwrite,
    )


def _metadata(path: Path) -> dict:
    """The burstlab metadata of a Parquet file; InputError (one line) when it is no readable
    Parquet file or its metadata is not a JSON object."""
    try:
        meta = read_metadata(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(path, f"not a readable Parquet file ({first})") from None
    if not isinstance(meta, dict):
        raise InputError(path, "burstlab metadata is not a JSON object", found=type(meta).__name__)
    return meta


def _is_spec(path: Path) -> bool:
    try:
        return "burstlab_spec" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False
