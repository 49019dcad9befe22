"""One CLI vocabulary: the whole command tree is walked, and an option name used with two
meanings, a vocabulary option that does not say its meaning, or a writing command without
--out fails here."""

from __future__ import annotations

from collections import defaultdict

import typer
from typer.core import TyperArgument

from burstlab.cli import app
from burstlab.options import COMMANDS, VOCABULARY, help_text

ROOT_ONLY = {"--data-dir", "--debug", "--version", "--install-completion", "--show-completion"}


def commands() -> dict[str, object]:
    root = typer.main.get_command(app)
    return dict(root.commands)  # type: ignore[attr-defined]


def options(command) -> dict[str, object]:
    """Long option name -> the click parameter, for every option of `command`."""
    out = {}
    for p in command.params:
        if isinstance(p, TyperArgument):
            continue
        for flag in p.opts:
            if flag.startswith("--"):
                out[flag] = p
    return out


def test_every_command_is_classified():
    assert sorted(commands()) == sorted(COMMANDS)


def test_an_option_name_has_one_meaning_everywhere():
    uses: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, command in commands().items():
        for flag, param in options(command).items():
            uses[flag].append((name, param.help or ""))  # type: ignore[attr-defined]
    problems = []
    for flag, where in sorted(uses.items()):
        key = flag.removeprefix("--")
        if key in VOCABULARY:
            meaning = help_text(key).removesuffix(".")
            for name, text in where:
                if not text.startswith(meaning):
                    problems.append(f"{name} {flag}: {text!r} does not say {meaning!r}")
        elif len(where) > 1:
            problems.append(f"{flag} is used by {[n for n, _ in where]} but not in the vocabulary")
    assert not problems, "\n".join(problems)


def test_short_flags_are_the_vocabularys():
    shorts = {f for t in VOCABULARY.values() for f in t.flags if not f.startswith("--")}
    for name, command in commands().items():
        for p in command.params:  # type: ignore[attr-defined]
            for flag in [*p.opts, *p.secondary_opts]:
                if flag.startswith("-") and not flag.startswith("--"):
                    assert flag in shorts or flag == "-h", f"{name}: short flag {flag} of {p.opts}"


def test_writing_commands_have_out_and_overwrite_and_others_do_not():
    for name, command in commands().items():
        flags = options(command)
        if COMMANDS[name] == "out":
            assert {"--out", "--overwrite"} <= set(flags), name
            assert "-o" in flags["--out"].opts  # type: ignore[attr-defined]
        else:
            assert "--out" not in flags, f"{name} writes to --out but is classed {COMMANDS[name]}"


def test_vocabulary_terms_are_all_used_and_root_options_stay_at_the_root():
    used = {f for c in commands().values() for f in options(c)}
    assert {t.flags[0] for t in VOCABULARY.values()} <= used
    assert not used & ROOT_ONLY
