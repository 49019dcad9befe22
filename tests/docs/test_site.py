"""The documentation site builds offline with --strict, and its CLI reference is complete."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.docs


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stderr


def test_strict_build_has_every_page_in_the_nav(site):
    out, log = site
    assert 'not included in the "nav"' not in log
    assert (out / "index.html").is_file()
    pages = {
        p.relative_to(REPO / "docs").with_suffix("").as_posix()
        for p in (REPO / "docs").rglob("*.md")
    }
    for page in pages:
        folder = page[: -len("index")] if page.endswith("index") else f"{page}/"
        html = out / f"{folder}index.html"
        assert html.is_file(), f"docs/{page}.md was not built"


def test_cli_page_lists_every_registered_command(site, load_hook):
    out, _ = site
    html = unescape((out / "cli" / "index.html").read_text(encoding="utf-8"))
    text = re.sub(r"<[^>]+>", "", html)
    hook = load_hook("cli_reference")
    commands = list(hook.walk_commands())
    assert commands[0].name == "burstlab"
    names = {doc.name for doc in commands}
    assert "burstlab card" in names  # registered by burstlab.card
    for doc in commands:
        assert doc.name in text, f"{doc.name} missing from the CLI reference"
        for param in doc.command.get_params(doc.context):
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt not in hook._SKIP_OPTIONS and not param.hidden:
                    assert opt in text, f"{doc.name} {opt} missing from the CLI reference"


def test_build_fetches_nothing(site):
    out, _ = site
    # material with font: false links no Google Fonts; no page pulls a CDN script or style
    for page in out.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "fonts.googleapis.com" not in html, page
        assert not re.search(r"<script[^>]+src=\"https?://", html), page


def test_cli_page_has_the_vocabulary_table(site):
    out, _ = site
    page = unescape((out / "cli" / "index.html").read_text(encoding="utf-8"))
    assert "burstlab:cli-vocabulary" not in page
    assert "Play time this many times faster (10 = ten times faster" in page
    assert "Where this command writes its result" in page


def test_reference_renders_usage_and_options_for_card(load_hook):
    hook = load_hook("cli_reference")
    [card] = [d for d in hook.walk_commands() if d.name == "burstlab card"]
    md = hook.render_command(card)
    assert md.startswith("## `burstlab card`")
    assert "Usage: burstlab card [OPTIONS] {target}" in md
    assert "| `target <str>` | A dataset id" in md
    assert (
        "| `-o, --out PATH` | Where this command writes its result — the card folder (README.md, "
        "data/, charts/) [required] |" in md
    )
    assert "| `--overwrite` | Replace what is already at --out (refused otherwise). |" in md
    assert "--install-completion" not in md
