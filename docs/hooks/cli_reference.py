"""mkdocs hook: render the CLI reference from the live `burstlab` command tree.

`docs/cli.md` holds the markers below; at build time one is replaced by the option vocabulary
(burstlab/options.py) and the other by one section per command (usage, help text, options), read from the same typer app users run. A command added, renamed
or re-documented in code therefore shows up in the site without anyone editing Markdown, and
the reference can never go stale. A page without the marker is an error, not a silent skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

MARKER = "<!-- burstlab:cli-reference -->"
VOCABULARY_MARKER = "<!-- burstlab:cli-vocabulary -->"
#: Shell-completion options typer adds to the root; they are not part of burstlab's interface.
_SKIP_OPTIONS = {"--install-completion", "--show-completion"}


class CommandDoc(NamedTuple):
    """One command of the tree: its words after `burstlab` and its click command object."""

    path: tuple[str, ...]
    command: Any
    context: Any

    @property
    def name(self) -> str:
        return " ".join(("burstlab", *self.path))


def walk_commands() -> Iterator[CommandDoc]:
    """Every visible command of `burstlab.cli.app`, depth first, the root first."""
    import typer

    from burstlab.cli import app

    root = typer.main.get_command(app)
    yield from _walk(root, (), root.context_class(root, info_name="burstlab"))


def _walk(command: Any, path: tuple[str, ...], ctx: Any) -> Iterator[CommandDoc]:
    yield CommandDoc(path, command, ctx)
    if not hasattr(command, "list_commands"):
        return
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is None or getattr(sub, "hidden", False):
            continue
        sub_ctx = sub.context_class(sub, info_name=name, parent=ctx)
        yield from _walk(sub, (*path, name), sub_ctx)


def _escape(text: str) -> str:
    """`<out>` in help text is a placeholder, not HTML: escape it outside `code` spans."""
    parts = text.split("`")
    parts[::2] = [p.replace("<", "&lt;").replace(">", "&gt;") for p in parts[::2]]
    return "`".join(parts)


def _cell(text: str) -> str:
    """Make help text safe inside a Markdown table cell (one line, no bare pipes)."""
    return _escape(" ".join(text.split())).replace("|", r"\|")


def first_paragraph(command: Any) -> str:
    """The first paragraph of a command's help (click's short help stops at "e.g.")."""
    text = command.short_help or (command.help or "").replace("\b\n", "")
    return " ".join(text.strip().split("\n\n")[0].split())


def render_command(doc: CommandDoc) -> str:
    """Markdown for one command: heading, help, usage and an options table."""
    cmd, ctx = doc.command, doc.context
    level = "#" * min(2 + max(len(doc.path) - 1, 0), 4)
    lines = [f"{level} `{doc.name}`", ""]
    help_text = (cmd.help or "").replace("\b\n", "").strip()
    if help_text:
        lines += [_escape(help_text), ""]
    usage = cmd.get_usage(ctx).strip()
    lines += ["```text", usage, "```", ""]
    rows = []
    for param in cmd.get_params(ctx):
        if getattr(param, "hidden", False) or set(getattr(param, "opts", [])) & _SKIP_OPTIONS:
            continue
        record = param.get_help_record(ctx)
        if record is None:  # positional arguments have no help record in click
            record = (param.human_readable_name, getattr(param, "help", None) or "")
        rows.append(record)
    if rows:
        lines += ["| argument / option | description |", "|---|---|"]
        lines += [f"| `{' '.join(opt.split())}` | {_cell(desc)} |" for opt, desc in rows]
        lines.append("")
    return "\n".join(lines)


def render_reference() -> str:
    """The whole reference: a command index, then every command's section."""
    docs = list(walk_commands())
    index = ["| command | what it does |", "|---|---|"]
    for doc in docs[1:]:
        index.append(f"| `{doc.name}` | {_cell(first_paragraph(doc.command))} |")
    body = [render_command(doc) for doc in docs]
    return "\n".join([*index, "", *body])


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs event: fill the marker on the CLI page."""
    if page.file.src_uri != "cli.md":
        return markdown
    for marker in (MARKER, VOCABULARY_MARKER):
        if marker not in markdown:
            raise ValueError(f"docs/cli.md lost its marker {marker!r}; the CLI reference needs it")
    from burstlab.options import vocabulary_markdown

    markdown = markdown.replace(VOCABULARY_MARKER, vocabulary_markdown())
    return markdown.replace(MARKER, render_reference())
