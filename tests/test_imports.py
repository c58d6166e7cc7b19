"""Imports in src/ganrepro run one way, from the base up, with no circles.

Every module's imports are read from its source (ast), those inside functions included:
a lazy import inside a command or a helper is still a dependency, and may only go down
like any other. Each module belongs to a layer, lowest first:

    base      errors, files, protocol, layout, images, devices, progress, machine, picklescan
              (and the package's __init__)
    settings  settings/
    models    data/, models/
    stages    checkpoints/, training/, metrics/, sampling
    report    report/
    bench     bench (the benchmark suite, which times the stages)
    cli       cli/

What a module may import:
- anything in a lower layer;
- any module of its own package (e.g. training/loop.py -> training/state.py);
- in the base layer, any other base module: the base is a flat set of small helpers
  (files.py raising errors.py's exceptions);
- nothing else: two packages of one layer stay independent of each other (metrics/ does not
  import training/, models/ does not import data/). What both need belongs a layer below.

Whatever is allowed, no two modules may import each other, directly or around a circle.
A module that belongs to no layer fails the test too: a new module gets its place here.
settings/ must not import torch, not even lazily and not through another module: building
the Snakemake DAG imports settings/ and nothing that loads torch.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "ganrepro"

LAYERS: list[tuple[str, set[str]]] = [   # (layer, its top-level modules and packages), lowest first
    ("base", {"__init__", "errors", "files", "protocol", "layout", "images", "devices", "progress", "machine",
              "picklescan"}),
    ("settings", {"settings"}),
    ("models", {"data", "models"}),
    ("stages", {"checkpoints", "training", "metrics", "sampling"}),
    ("report", {"report"}),
    ("bench", {"bench"}),
    ("cli", {"cli"}),
]
LAYER_OF = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}
TORCH_FREE = "settings"


@dataclass(frozen=True)
class Import:
    source: str          # the importing module, e.g. ganrepro.training.loop
    path: Path
    line: int
    target: str          # the imported module (ganrepro's own) or top-level name (a third party)

    def __str__(self) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{self.line} -> {self.target}"


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def unit(module: str) -> str:
    """The top-level module or package a module belongs to ('__init__' for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """What `module` imports, wherever in the file: ganrepro's modules by their dotted name
    (`from ganrepro.x import y` is ganrepro.x.y when y is a module, else ganrepro.x), other
    packages by their top-level name."""
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [Import(module, path, node.lineno, _resolve(alias.name, known)) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in known else _resolve(base, known)
                out.append(Import(module, path, node.lineno, target))
    return out


def _resolve(name: str, known: dict[str, Path]) -> str:
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        while name not in known and "." in name:      # an attribute path: the module that holds it
            name = name.rsplit(".", 1)[0]
        return name
    return name.split(".")[0]


def graph() -> dict[str, list[Import]]:
    known = modules()
    return {module: imports_of(module, path, known) for module, path in known.items()}


def problem(imp: Import) -> str | None:
    """Why an import of one ganrepro module by another breaks the layers, or None."""
    src, dst = unit(imp.source), unit(imp.target)
    if src not in LAYER_OF:
        return f"{imp.source} belongs to no layer"
    if dst not in LAYER_OF:
        return f"{imp.target} belongs to no layer"
    if src == dst:
        return None
    lo, hi = LAYER_OF[dst], LAYER_OF[src]
    if lo < hi or (lo == hi == 0):
        return None
    if lo == hi:
        return f"{src} and {dst} are both in the {LAYERS[lo][0]} layer; what both need belongs lower"
    return f"upward: {LAYERS[hi][0]} imports {LAYERS[lo][0]}"


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One path around each circle of the graph (modules in import order, the first repeated)."""
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def own(imports: dict[str, list[Import]]) -> list[Import]:
    """The imports of ganrepro's modules by ganrepro's modules (a module naming itself aside)."""
    return [i for imps in imports.values() for i in imps
            if (i.target == PACKAGE or i.target.startswith(PACKAGE + ".")) and i.target != i.source]


def test_every_import_goes_down_or_stays_in_its_own_package():
    imports = graph()
    unplaced = sorted(m for m in imports if unit(m) not in LAYER_OF)
    bad = dict.fromkeys(f"{imp}  ({why})" for imp in own(imports)
                        if unit(imp.source) in LAYER_OF and (why := problem(imp)))
    message = []
    if unplaced:
        message.append("modules that belong to no layer (give each its place in LAYERS):\n  " + "\n  ".join(unplaced))
    if bad:
        message.append("imports against the direction base -> settings -> data/models -> "
                       "checkpoints/training/metrics/sampling -> report -> bench -> cli:\n  " + "\n  ".join(bad))
    assert not message, "\n".join(message)


def test_no_module_imports_itself_around_a_circle():
    imports = graph()
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], Import] = {}
    for imp in own(imports):
        edges.setdefault(imp.source, set()).add(imp.target)
        where.setdefault((imp.source, imp.target), imp)
    found = cycles(edges)
    lines = []
    for path in found:
        lines.append(" -> ".join(path))
        lines += [f"    {where[a, b]}" for a, b in zip(path, path[1:])]
    assert not found, "circular imports:\n" + "\n".join(lines)


def test_settings_import_no_torch_even_lazily_or_through_another_module():
    imports = graph()
    start = [m for m in imports if unit(m) == TORCH_FREE]
    assert start, f"src/{PACKAGE}/{TORCH_FREE}/ is missing"
    seen, todo, via = set(start), list(start), {}
    while todo:
        module = todo.pop()
        for imp in imports[module]:
            parts = imp.target.split(".")      # importing a.b.c runs a/__init__ and a/b/__init__ too
            for reached in (".".join(parts[:n]) for n in range(1, len(parts) + 1)):
                if reached in imports and reached not in seen:
                    seen.add(reached)
                    via[reached] = imp
                    todo.append(reached)
    torch = [next(i for i in imports[m] if i.target.startswith("torch")) for m in sorted(seen)
             if any(i.target.startswith("torch") for i in imports[m])]      # the first of each module

    def chain(imp: Import) -> str:
        links = [str(imp)]
        module = imp.source
        while module in via:
            links.append(str(via[module]))
            module = via[module].source
        return "\n    via ".join(links)
    assert not torch, f"{TORCH_FREE}/ reaches torch:\n  " + "\n  ".join(chain(i) for i in torch)


@pytest.mark.parametrize("source, expected", [
    ("from ganrepro.training import loop", "ganrepro.training.loop"),
    ("from ganrepro.training.loop import Trainer", "ganrepro.training.loop"),
    ("import ganrepro.metrics.features", "ganrepro.metrics.features"),
    ("from . import state", "ganrepro.training.state"),
    ("from .. import files", "ganrepro.files"),
    ("from ..metrics import features", "ganrepro.metrics.features"),
])
def test_the_walk_resolves_absolute_relative_and_lazy_imports(tmp_path, source, expected):
    path = tmp_path / "loop.py"
    path.write_text(f"def later():\n    {source}\n")
    known = modules()
    [imp] = imports_of("ganrepro.training.loop", path, known)
    assert imp.target == expected and imp.line == 2


def test_the_rule_refuses_upward_and_sideways_imports_and_finds_circles():
    here = Path(SRC / PACKAGE / "x.py")
    up = Import("ganrepro.metrics.evaluate", here, 1, "ganrepro.report.inputs")
    side = Import("ganrepro.metrics.evaluate", here, 1, "ganrepro.training.grids")
    down = Import("ganrepro.report.inputs", here, 1, "ganrepro.metrics.evaluate")
    base = Import("ganrepro.files", here, 1, "ganrepro.errors")
    assert problem(up).startswith("upward") and "layer" in problem(side)
    assert problem(down) is None and problem(base) is None
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
