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

from burstlab.cards.hf import CardResult
from burstlab.errors import InputError

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
            from burstlab.parquet import read_metadata

            source = str(read_metadata(path).get("source") or "")
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
    """Write the card for `target` (see the module docstring) into `out_dir`.

    `data_dir` is where ingested datasets live (a dataset id is looked up there). For a spec,
    `seed` and `duration_s` (default: the span the spec was fitted on) pick the workload the
    card publishes; for a synthetic Parquet file, `spec` is the spec that generated it (adds
    the spec and the fidelity report). Returns the written card with its validation result;
    raises BurstlabError when the card is invalid.
    """
    kind, path = card_kind(target)
    if kind == "source":
        from burstlab.cards.source import source_card

        if path is None:
            from burstlab.traces import parquet_path

            path = parquet_path(str(target), data_dir)
        return source_card(path, out_dir, overwrite=overwrite)
    if kind == "run":
        from burstlab.cards.run import run_card

        return run_card(path, out_dir, overwrite=overwrite)
    from burstlab.cards.synth import spec_card, synth_parquet_card

    if kind == "spec":
        return spec_card(
            path, out_dir, seed=seed, duration_s=duration_s, data_dir=data_dir, overwrite=overwrite
        )
    return synth_parquet_card(path, out_dir, spec_path=spec, data_dir=data_dir, overwrite=overwrite)


def _is_spec(path: Path) -> bool:
    try:
        return "burstlab_spec" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False
