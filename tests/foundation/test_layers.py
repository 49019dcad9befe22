"""The layer contract, checked on the source (every import, at module level or inside a
function): data flows traces → fitting → synth → replay → cards; engines serve replay, cards and
the CLI; shared modules in burstlab/ import no stage; a stage reaches an earlier one only
through its face (`burstlab.<stage>` and the names in its __all__); and no module imports
itself back through a cycle.

An AST walk rather than import-linter: the stages live in top-level folders mapped onto
`burstlab.<stage>` by setuptools' package-dir, which grimp (import-linter's graph builder)
cannot follow in an editable install.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Pipeline stages in flow order; a stage may import only stages before it.
PIPELINE = ("traces", "fitting", "synth", "replay", "cards")
#: Who may import the engines (besides the package face and the CLI).
ENGINE_USERS = {"replay", "cards"}
#: Modules of the package face that may import every stage.
FACE = {"burstlab", "burstlab.cli"}


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    found: dict[str, Path] = {}
    roots = {"burstlab": REPO / "burstlab"} | {
        f"burstlab.{s}": REPO / s for s in (*PIPELINE, "engines")
    }
    for prefix, root in roots.items():
        for path in root.rglob("*.py"):
            if "samples" in path.relative_to(root).parts:
                continue
            rel = path.relative_to(root).with_suffix("").parts
            if prefix == "burstlab" and rel and rel[0] in (*PIPELINE, "engines"):
                continue
            name = ".".join((prefix, *rel))
            found[name.removesuffix(".__init__")] = path
    return found


def _runtime_nodes(tree: ast.Module):
    """Every node except the bodies of ``if TYPE_CHECKING:`` blocks (annotations only)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []  # before the walk below descends into it
    yield from ast.walk(tree)


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Dotted burstlab modules `path` imports at run time (a `from pkg import name` of a
    submodule counts as that submodule; imports only for type checkers do not count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("burstlab")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if not base.startswith("burstlab"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return out


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in (*PIPELINE, "engines") else None


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: {i for i in imports(p, m, known) if i in known} for m, p in mods.items()}


def test_every_module_is_seen():
    mods = modules()
    assert {"burstlab.spec", "burstlab.traces.scan", "burstlab.cards.target"} <= set(mods)
    assert "burstlab.engines.llamacpp" in mods and len(mods) > 100


def test_imports_flow_forward_through_faces():
    problems = []
    for module, targets in graph().items():
        if module in FACE:
            continue
        here = stage_of(module)
        for target in targets:
            there = stage_of(target)
            if there is None or there == here:
                continue
            if here is None:
                problems.append(f"shared {module} imports the stage module {target}")
            elif there == "engines":
                if here not in ENGINE_USERS:
                    problems.append(f"{module} imports {target}: engines serve {ENGINE_USERS}")
            elif here == "engines" or PIPELINE.index(there) > PIPELINE.index(here):
                problems.append(f"{module} imports {target}: against the flow")
            if there != here and target != f"burstlab.{there}":
                problems.append(f"{module} imports {target}: not through the face burstlab.{there}")
    assert not problems, "\n".join(sorted(problems))


def test_no_import_cycles():
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in g[v]:
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_contract_catches_a_backward_import(tmp_path):
    """The checker itself: a synth module importing replay is reported (a test that cannot fail
    is worthless)."""
    fake = tmp_path / "x.py"
    fake.write_text("from burstlab.replay.run import replay\nimport burstlab.fitting.lengths\n")
    found = imports(fake, "burstlab.synth.x", {"burstlab.replay.run", "burstlab.fitting.lengths"})
    assert found == {"burstlab.replay.run", "burstlab.fitting.lengths"}
    assert stage_of("burstlab.replay.run") == "replay" and stage_of("burstlab.spec") is None
