"""The mkdocs hooks on their own: notebook rendering and the Sources nav."""

from __future__ import annotations

import base64
from types import SimpleNamespace

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def test_render_notebook_writes_markdown_code_text_and_images(load_hook):
    hook = load_hook("notebooks")
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Title\n", "text"]},
            {
                "cell_type": "code",
                "source": "print(1)",
                "outputs": [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}],
            },
            {
                "cell_type": "code",
                "source": "chart",
                "outputs": [
                    {"output_type": "display_data", "data": {"image/png": PNG, "text/plain": "x"}}
                ],
            },
            {
                "cell_type": "code",
                "source": "df",
                "outputs": [{"output_type": "execute_result", "data": {"text/plain": "a | b"}}],
            },
        ]
    }
    md, images = hook.render_notebook(nb, "demo")
    assert md.startswith("# Title\ntext\n\n[Download the notebook](demo.ipynb)")
    assert "```python\nprint(1)\n```\n\n```text\n1\n```" in md
    assert "![output](demo_files/output_0.png)" in md
    assert images == {"demo_files/output_0.png": b"\x89PNG\r\n\x1a\nfake"}
    assert "```text\na | b\n```" in md


def test_sources_nav_lists_index_first(tmp_path, load_hook):
    hook = load_hook("sources_nav")
    (tmp_path / "sources").mkdir()
    for name in ("mooncake.md", "index.md", "azure-llm.md"):
        (tmp_path / "sources" / name).write_text("# x\n")
    assert hook.source_pages(tmp_path) == [
        "sources/index.md",
        "sources/azure-llm.md",
        "sources/mooncake.md",
    ]

    nav = [{"Home": "index.md"}, {"Sources": []}, {"CLI": "cli.md"}]
    config = SimpleNamespace(docs_dir=str(tmp_path), nav=nav)
    assert hook.on_config(config).nav[1] == {"Sources": hook.source_pages(tmp_path)}
    empty = tmp_path / "empty"
    empty.mkdir()
    config = SimpleNamespace(docs_dir=str(empty), nav=[{"Home": "index.md"}, {"Sources": []}])
    assert hook.on_config(config).nav == [{"Home": "index.md"}]


def test_cli_reference_escapes_placeholders_outside_code(load_hook):
    hook = load_hook("cli_reference")
    cell = hook._cell("Writes <out>/records | see `<out>/summary.json`\n  too")
    assert cell == r"Writes &lt;out&gt;/records \| see `<out>/summary.json` too"
