"""The Hugging Face side of a dataset card: YAML front matter and its offline validation.

The Hub validates card metadata on push (`DatasetCard.validate` posts to the Hub), which a
card written on an offline machine cannot use. `check_card` does the same checks locally:
the YAML parses and loads into `huggingface_hub.DatasetCardData`, the licence is a Hub licence
id, the size category is one of the Hub's, and every `configs[].data_files` path exists in the
card directory and is a readable Parquet file. Problems are returned as sentences, one each.

`publish` is how every card reaches its folder: built in a hidden sibling folder, validated
there, and renamed into place only when complete and valid (`burstlab.atomic.staged_dir`), so
a failed card leaves nothing behind and the one overwrite policy holds.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from burstlab.atomic import staged_dir
from burstlab.errors import BurstlabError, MissingExtraError, UsageError
from burstlab.results import Result, Summary

#: Licence ids the Hub accepts in card metadata (https://huggingface.co/docs/hub/repositories-licenses).
HF_LICENSES = frozenset(
    [
        "apache-2.0",
        "mit",
        "openrail",
        "bigscience-openrail-m",
        "creativeml-openrail-m",
        "bigscience-bloom-rail-1.0",
        "bigcode-openrail-m",
        "afl-3.0",
        "artistic-2.0",
        "bsl-1.0",
        "bsd",
        "bsd-2-clause",
        "bsd-3-clause",
        "bsd-3-clause-clear",
        "c-uda",
        "cc",
        "cc0-1.0",
        "cc-by-2.0",
        "cc-by-2.5",
        "cc-by-3.0",
        "cc-by-4.0",
        "cc-by-sa-3.0",
        "cc-by-sa-4.0",
        "cc-by-nc-2.0",
        "cc-by-nc-3.0",
        "cc-by-nc-4.0",
        "cc-by-nd-4.0",
        "cc-by-nc-nd-3.0",
        "cc-by-nc-nd-4.0",
        "cc-by-nc-sa-2.0",
        "cc-by-nc-sa-3.0",
        "cc-by-nc-sa-4.0",
        "cdla-sharing-1.0",
        "cdla-permissive-1.0",
        "cdla-permissive-2.0",
        "wtfpl",
        "ecl-2.0",
        "epl-1.0",
        "epl-2.0",
        "etalab-2.0",
        "eupl-1.1",
        "eupl-1.2",
        "agpl-3.0",
        "gfdl",
        "gpl",
        "gpl-2.0",
        "gpl-3.0",
        "lgpl",
        "lgpl-2.1",
        "lgpl-3.0",
        "isc",
        "h-research",
        "intel-research",
        "lppl-1.3c",
        "ms-pl",
        "apple-ascl",
        "apple-amlr",
        "mpl-2.0",
        "odc-by",
        "odbl",
        "openrail++",
        "osl-3.0",
        "postgresql",
        "ofl-1.1",
        "ncsa",
        "unlicense",
        "zlib",
        "pddl",
        "lgpl-lr",
        "deepfloyd-if-license",
        "llama2",
        "llama3",
        "llama3.1",
        "llama3.2",
        "llama3.3",
        "llama4",
        "gemma",
        "unknown",
        "other",
    ]
)

#: The Hub's size buckets, by upper bound on the number of rows.
SIZE_CATEGORIES = (
    (1e3, "n<1K"),
    (1e4, "1K<n<10K"),
    (1e5, "10K<n<100K"),
    (1e6, "100K<n<1M"),
    (1e7, "1M<n<10M"),
    (1e8, "10M<n<100M"),
    (1e9, "100M<n<1B"),
    (1e10, "1B<n<10B"),
    (1e11, "10B<n<100B"),
    (1e12, "100B<n<1T"),
    (math.inf, "n>1T"),
)
_SIZE_NAMES = {name for _, name in SIZE_CATEGORIES} | {"other"}


def size_category(rows: int) -> str:
    """The Hub's size category for a row count (e.g. 19,366 → ``10K<n<100K``)."""
    return next(name for bound, name in SIZE_CATEGORIES if rows < bound)


def hf_license(text: str | None) -> str:
    """The Hub licence id for a licence as written in provenance metadata.

    The provenance text may carry more than one licence (``"CC-BY-4.0 (data); MIT (code…)"``);
    the first one names the data, which is what a dataset card is about. ``CC BY 4.0``,
    ``cc_by_4.0`` and ``CC-BY-4.0`` all map to ``cc-by-4.0``; unknown text gives ``other``.
    """
    if not text:
        return "unknown"
    first = re.split(r"[;(,]", text, maxsplit=1)[0].strip().lower()
    candidate = re.sub(r"[\s_]+", "-", first)
    candidate = re.sub(r"^cc-?by", "cc-by", candidate)
    return candidate if candidate in HF_LICENSES else "other"


def front_matter(
    *,
    pretty_name: str,
    license_text: str | None,
    rows: int,
    data_files: Sequence[str] | Mapping[str, str | Sequence[str]],
    source_datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    task_categories: Sequence[str] = ("time-series-forecasting",),
) -> dict[str, Any]:
    """Card metadata as a plain dict, in the Hub's keys.

    `data_files` are paths (or globs) relative to the card directory, each a ``train`` split;
    a sequence gives one ``default`` config, a dict one config per name
    (``{"records": "records/*.parquet"}``).
    """
    named = data_files if isinstance(data_files, Mapping) else {"default": data_files}
    configs = [
        {"config_name": name, "data_files": [{"split": "train", "path": p} for p in _paths(paths)]}
        for name, paths in named.items()
    ]
    meta: dict[str, Any] = {
        "license": hf_license(license_text),
        "pretty_name": pretty_name,
        "size_categories": [size_category(rows)],
        "tags": ["burstlab", "llm-serving", "workload-trace", *tags],
        "configs": configs,
    }
    if meta["license"] == "other" and license_text:
        meta["license_name"] = re.sub(r"[^a-z0-9]+", "-", license_text.lower()).strip("-")[:64]
    if source_datasets:
        meta["source_datasets"] = list(source_datasets)
    if task_categories:
        meta["task_categories"] = list(task_categories)
    return meta


def hub() -> Any:
    """huggingface_hub, or MissingExtraError naming the extra that installs it."""
    try:
        # imported here, not at the top: huggingface_hub is an optional extra (burstlab[card]),
        # and the rest of the package must import without it
        import huggingface_hub
    except ImportError:
        raise MissingExtraError("card", "huggingface_hub", "validating a dataset card") from None
    return huggingface_hub


def _paths(paths: str | Sequence[str]) -> list[str]:
    return [paths] if isinstance(paths, str) else list(paths)


def render_card(meta: dict[str, Any], body: str) -> str:
    """README.md text: YAML front matter from `meta`, then the Markdown body.

    Built through `huggingface_hub.DatasetCardData` so the YAML is exactly what the Hub's own
    tooling writes (key order, quoting).
    """
    DatasetCardData = hub().DatasetCardData

    data = DatasetCardData(**meta)
    return f"---\n{data.to_yaml()}\n---\n\n{body.strip()}\n"


def check_card(card_dir: str | Path) -> list[str]:
    """Offline validation of `card_dir/README.md`; returns the problems found ([] if none)."""
    DatasetCard = hub().DatasetCard

    card_dir = Path(card_dir)
    readme = card_dir / "README.md"
    if not readme.is_file():
        return [f"{readme}: missing"]
    try:
        card = DatasetCard.load(readme, ignore_metadata_errors=False)
    except Exception as exc:  # the Hub library raises ValueError/YAMLError for bad metadata
        return [f"{readme}: front matter does not load: {exc}"]
    meta = card.data.to_dict()
    problems = []
    if not card.text.strip():
        problems.append(f"{readme}: empty body")
    lic = meta.get("license")
    if lic not in HF_LICENSES:
        problems.append(f"{readme}: license {lic!r} is not a Hub licence id")
    if lic == "other" and not meta.get("license_name"):
        problems.append(f"{readme}: license 'other' needs license_name")
    if not meta.get("pretty_name"):
        problems.append(f"{readme}: pretty_name is empty")
    sizes = meta.get("size_categories") or []
    bad = [s for s in sizes if s not in _SIZE_NAMES]
    if not sizes or bad:
        problems.append(f"{readme}: size_categories {sizes!r}; expected one of the Hub's buckets")
    problems += _check_configs(card_dir, readme, meta.get("configs"))
    return problems


def _check_configs(card_dir: Path, readme: Path, configs: Any) -> list[str]:
    if not isinstance(configs, list) or not configs:
        return [f"{readme}: configs missing; expected a list of {{config_name, data_files}}"]
    problems = []
    for config in configs:
        name = config.get("config_name") if isinstance(config, dict) else None
        files = config.get("data_files") if isinstance(config, dict) else None
        if not name or not files:
            problems.append(f"{readme}: config {config!r} lacks config_name or data_files")
            continue
        for pattern in _patterns(files):
            matches = sorted(card_dir.glob(pattern))
            if not matches:
                problems.append(f"{readme}: config {name!r}: no file matches {pattern!r}")
            for path in matches:
                try:
                    pq.read_metadata(path)
                except Exception as exc:  # pyarrow raises ArrowInvalid/OSError on a bad file
                    problems.append(f"{path}: not a readable Parquet file ({exc})")
    return problems


def _patterns(files: Any) -> list[str]:
    """data_files may be a path, a list of paths, or a list of {split, path} entries."""
    if isinstance(files, str):
        return [files]
    out = []
    for item in files:
        path = item.get("path") if isinstance(item, dict) else item
        out += [path] if isinstance(path, str) else list(path or [])
    return out


@dataclass
class CardResult(Result):
    """A card directory as written: what kind of card, its files, and validation problems."""

    kind: str  # "source" | "synth" | "spec" | "run"
    out_dir: Path
    readme: Path
    data_files: list[str]  # relative to out_dir
    charts: list[str]  # relative to out_dir
    problems: list[str] = field(default_factory=list)  # from check_card; [] when valid

    @property
    def valid(self) -> bool:
        return not self.problems

    def table(self) -> pl.DataFrame:
        """One row per file of the card (README, data, charts), paths relative to `out_dir`."""
        files = [("README.md", "card"), *((f, "data") for f in self.data_files)]
        files += [(f, "chart") for f in self.charts]
        return pl.DataFrame(files, schema=["path", "role"], orient="row")

    def summary(self) -> Summary:
        state = "valid" if self.valid else f"{len(self.problems)} problem(s)"
        s = Summary(f"{self.kind} card written to {self.out_dir} ({state})")
        s.add("files", self.table())
        s.notes.extend(self.problems)
        return s

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out_dir": str(self.out_dir), "readme": str(self.readme)}


def finish_card(
    kind: str,
    out_dir: Path,
    meta: dict[str, Any],
    body: str,
    data_files: list[str],
    charts: list[str],
) -> CardResult:
    """Write README.md into `out_dir`, validate the directory offline, and describe it (the
    problems found are on the result; `publish` refuses to put an invalid card in place)."""
    readme = out_dir / "README.md"
    readme.write_text(render_card(meta, body), encoding="utf-8")
    return CardResult(kind, out_dir, readme, data_files, charts, check_card(out_dir))


def publish(
    out_dir: str | Path, build: Callable[[Path], CardResult], *, overwrite: bool = False
) -> CardResult:
    """Build a card with `build(folder)` and put it at `out_dir` only when it is complete and
    valid; returns the card as it lies at `out_dir`.

    `build` fills an empty hidden sibling folder of `out_dir` and returns its `finish_card`
    result. An existing non-empty `out_dir` is refused before any work unless `overwrite`
    (then it is replaced whole, and only once the new card is valid). When `build` fails or
    the card is invalid (BurstlabError naming every problem), the staged folder is removed
    and `out_dir` is left as it was: a failed card leaves nothing behind.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; a card is written to a folder", param="out")
    above = next((p for p in out.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise UsageError(
            f"{above} is a file; the card folder cannot be made inside it", param="out"
        )
    hub()  # fail before any work when the extra that validates cards is missing
    with staged_dir(out, overwrite=overwrite, param="out") as staging:
        result = build(staging)
        if result.problems:
            problems = [p.replace(str(staging), str(out)) for p in result.problems]
            raise BurstlabError("dataset card failed validation: " + "; ".join(problems))
    return dataclasses.replace(result, out_dir=out, readme=out / "README.md")
