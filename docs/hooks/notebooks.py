"""mkdocs hook: publish each executed notebook in `docs/notebooks/` as a page of the site.

The notebooks are committed WITH their outputs (the test suite re-executes them), so the
site shows exactly what a reader gets: for `notebooks/NAME.ipynb` a page `notebooks/NAME.md`
is generated with the Markdown cells, the code, text outputs and chart images (PNG/SVG files
beside the page). No Jupyter converter is needed at build time, and nothing is fetched.
The `.ipynb` itself stays in the site as a download.
"""

from __future__ import annotations

import base64
import json
from pathlib import PurePosixPath
from typing import Any

from mkdocs.structure.files import File, Files

_IMAGES = {"image/png": "png", "image/svg+xml": "svg"}


def _text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def _fence(text: str, lang: str = "text") -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def render_notebook(nb: dict, stem: str) -> tuple[str, dict[str, bytes]]:
    """Markdown for a notebook and the image files it refers to ({file name: bytes})."""
    parts: list[str] = []
    images: dict[str, bytes] = {}
    for cell in nb.get("cells", []):
        source = _text(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            parts.append(source)
            if len(parts) == 1:  # right under the title
                parts.append(f"[Download the notebook]({stem}.ipynb) (executed, with outputs)")
            continue
        if cell["cell_type"] != "code" or not source.strip():
            continue
        parts.append(_fence(source, "python"))
        for output in cell.get("outputs", []):
            kind = output["output_type"]
            if kind == "stream":
                parts.append(_fence(_text(output["text"])))
            elif kind == "error":
                parts.append(_fence(f"{output['ename']}: {output['evalue']}"))
            elif kind in ("display_data", "execute_result"):
                parts.append(_render_data(output["data"], stem, images))
    return "\n\n".join(p for p in parts if p) + "\n", images


def _render_data(data: dict[str, Any], stem: str, images: dict[str, bytes]) -> str:
    for mime, ext in _IMAGES.items():
        if mime in data:
            name = f"{stem}_files/output_{len(images)}.{ext}"
            payload = _text(data[mime])
            images[name] = payload.encode() if ext == "svg" else base64.b64decode(payload)
            return f"![output]({name})"
    if "text/markdown" in data:
        return _text(data["text/markdown"])
    if "text/plain" in data:
        return _fence(_text(data["text/plain"]))
    return ""


def on_files(files: Files, config: Any) -> Files:
    """mkdocs event: add a generated page (and its images) for every notebook."""
    for nb_file in [f for f in files if f.src_uri.endswith(".ipynb")]:
        folder = PurePosixPath(nb_file.src_uri).parent
        stem = PurePosixPath(nb_file.src_uri).stem
        with open(nb_file.abs_src_path, encoding="utf-8") as fh:
            markdown, images = render_notebook(json.load(fh), stem)
        files.append(File.generated(config, str(folder / f"{stem}.md"), content=markdown))
        for name, payload in images.items():
            files.append(File.generated(config, str(folder / name), content=payload))
    return files
