"""A dataset card for an ingested source: its canonical Parquet file, described for publishing.

Everything the body states is read from the shipped file: provenance from its ``burstlab``
Parquet metadata (URL, sha256 of the original files, licence, citation, rows read / kept /
dropped by reason), numbers from its rows, burstiness and fitted models from
`burstlab.fitting`, and caveats measured on the rows plus the ones the source documents.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from burstlab.cards.caveats import documented_caveats, measured_caveats, sample_caveat
from burstlab.cards.charts import rate_chart, save_card_chart, token_cdf_chart
from burstlab.cards.fit import fit_sections
from burstlab.cards.hf import CardResult, finish_card, front_matter, hf_license
from burstlab.cards.schema import schema_markdown
from burstlab.cards.stats import (
    describe_markdown,
    kv_table,
    md_table,
    render_sections,
    summarize_requests,
    summary_markdown,
)
from burstlab.cards.tables import read_table
from burstlab.parquet import read_metadata


def source_card(parquet: str | Path, out: Path) -> CardResult:
    """Fill the empty folder `out` with the card of one ingested dataset's Parquet file
    (`burstlab.cards.card` stages the folder and puts it in place; see `hf.publish`).

    The folder gets `data/<source>.parquet` (a byte copy, provenance footer included),
    `charts/*.png|svg`, and `README.md` (Hugging Face card: YAML front matter + body).
    """
    parquet = Path(parquet)
    meta = read_metadata(parquet)
    source = meta.get("source")
    if not isinstance(source, str) or not re.fullmatch(r"[\w][\w.:+-]*", source):
        source = parquet.stem  # the metadata names none, or nothing usable as a file name
    table = str(meta.get("table") or "requests")
    data_rel = f"data/{source}.parquet"
    (out / "data").mkdir(exist_ok=True)
    shutil.copyfile(parquet, out / data_rel)

    frame = read_table(out / data_rel, str(table), shown_as=parquet)
    sections = [
        _intro(source, table, meta, frame.height),
        ("Provenance", provenance_markdown(meta)),
        (
            "Schema",
            f"Table kind `{table}`; units are seconds and tokens.\n\n" + schema_markdown(table),
        ),
    ]
    charts: list[str] = []
    extra_files: list[str] = []
    if table == "requests":
        summary = summarize_requests(frame)
        charts += save_card_chart(rate_chart(frame, f"{source}: request rate"), out, "rate")
        charts += save_card_chart(token_cdf_chart(frame, f"{source}: token lengths"), out, "tokens")
        sections.append(("Summary statistics", summary_markdown(summary)))
        fitted = fit_sections(frame, out)
        sections += fitted.sections
        charts += fitted.charts
        if fitted.spec_file:
            extra_files.append(fitted.spec_file)
        sections.append(("Charts", _charts_markdown(charts, sections)))
    else:
        sections.append(("Summary statistics", describe_markdown(frame)))
    sections.append(("Caveats", caveats_markdown(source, frame, meta)))
    sections.append(("Load it", _load_markdown(data_rel)))
    if meta.get("citation"):
        sections.append(
            ("Citation", f"If you use this data, cite the source:\n\n> {meta['citation']}")
        )

    body = render_sections(f"{source}: {table} trace in burstlab's canonical schema", sections)
    card_meta = front_matter(
        pretty_name=f"{source} ({table}, burstlab canonical schema)",
        license_text=meta.get("licence"),
        rows=frame.height,
        data_files=[data_rel],
        source_datasets=_source_datasets(meta),
        tags=[t for t in (meta.get("family"), table) if t],
    )
    return finish_card("source", out, card_meta, body, [data_rel, *extra_files], charts)


def _intro(source: str, table: str, meta: dict[str, Any], rows: int) -> tuple[str, str]:
    lic = meta.get("licence") or "not stated"
    text = (
        f"`{source}` as a burstlab canonical `{table}` table: {rows:,} rows in one Parquet "
        f"file, converted from the original files listed under Provenance. Licence of the "
        f"data: {lic} (card metadata id `{hf_license(meta.get('licence'))}`). "
        "The Parquet footer carries the same provenance under the key `burstlab`."
    )
    return ("About", text)


def provenance_markdown(meta: dict[str, Any]) -> str:
    """Where the rows come from and what happened to every input row."""
    rows = [
        ["source id", f"`{meta.get('source', '')}`"],
        ["homepage", meta.get("homepage")],
        ["download URL", meta.get("url")],
        ["licence", meta.get("licence")],
        ["first request (UTC)", meta.get("t0_utc")],
        ["rows read", meta.get("rows_read")],
        ["rows kept", meta.get("rows_kept")],
        ["sha256 of the inputs", f"`{meta['input_sha256']}`" if meta.get("input_sha256") else None],
        [
            "converted by",
            f"burstlab {meta.get('burstlab_version', '?')} on {meta.get('ingested_at', '?')}",
        ],
    ]
    parts = [kv_table(rows)]
    files = meta.get("files") or []
    if files:
        parts.append(
            md_table(
                ["original file", "bytes", "sha256"],
                [[f["name"], f.get("bytes"), f"`{f.get('sha256', '')}`"] for f in files],
            )
        )
    dropped = meta.get("rows_dropped") or {}
    if dropped:
        parts.append(md_table(["rows dropped, by reason", "rows"], list(dropped.items())))
    elif meta.get("rows_read") is not None:
        parts.append("No row was dropped: rows read = rows kept.")
    return "\n\n".join(parts)


def caveats_markdown(source: str, frame: pl.DataFrame, meta: dict[str, Any]) -> str:
    """Measured caveats (from these rows) and documented ones (from the source), as lists."""
    measured = measured_caveats(frame)
    documented = sample_caveat(meta) + documented_caveats(source)
    parts = []
    if measured:
        parts.append(
            "Measured on the rows of this file:\n\n" + "\n".join(f"- {c}" for c in measured)
        )
    if documented:
        parts.append("Documented for this source:\n\n" + "\n".join(f"- {c}" for c in documented))
    return "\n\n".join(parts) or "None known."


def _charts_markdown(charts: list[str], sections: list[tuple[str, str]]) -> str:
    """The PNG charts no section has embedded yet (SVG twins are beside them)."""
    shown = "".join(text for _, text in sections)
    pngs = [c for c in charts if c.endswith(".png") and f"]({c})" not in shown]
    return "\n\n".join(f"![{Path(c).stem}]({c})" for c in pngs) + (
        "\n\nSVG versions are beside the PNG files." if pngs else ""
    )


def _load_markdown(data_rel: str) -> str:
    return (
        "```python\n"
        "import polars as pl\n"
        f'df = pl.read_parquet("{data_rel}")\n'
        "# or, from the Hub: datasets.load_dataset(REPO_ID)['train']\n"
        "```"
    )


def _source_datasets(meta: dict[str, Any]) -> list[str]:
    """``extended|owner/repo`` for a GitHub-hosted source, else ``extended``."""
    home = meta.get("homepage") or ""
    found = re.match(r"https?://github\.com/([^/]+/[^/#?]+)", home)
    return [f"extended|{found.group(1)}"] if found else ["extended"]
