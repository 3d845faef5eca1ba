"""The package's four layers: imports only go down (display -> experiments -> engine -> plumbing).

Read from the source with ``ast`` (static: an import inside a function counts too), so a module
that reaches up a layer fails here before it reaches a reader.
"""

import ast
from pathlib import Path

import pytest

import intriguing

PACKAGE = Path(intriguing.__file__).parent
LAYERS = ("plumbing", "engine", "experiments", "display")
#: What each layer may import from the package, besides itself.
ALLOWED = {"plumbing": set(), "engine": {"plumbing"}, "experiments": {"engine", "plumbing"},
           "display": {"plumbing", "experiments"}}
#: The command line and the benchmarks sit in plumbing but run everything: they are the top of
#: the graph, and only they may import any layer. The models archive packs the zoo's files and
#: every experiment's results and checks models against the zoo's cache keys, so it is one too.
ENTRY_POINTS = {"plumbing/cli.py", "plumbing/bench.py", "plumbing/pipeline.py",
                "plumbing/archive.py"}
#: The live viewer's one adapter to the engine: in a running notebook it attacks on demand.
LIVE_ADAPTER = {"display/live.py"}
#: Display reads the registry (names and pages of results files) and the paper's transcription,
#: never an experiment's code.
DISPLAY_MAY_READ = {"intriguing.experiments", "intriguing.experiments.paper",
                    "intriguing.experiments.registry"}


def _imports(path: Path) -> set[str]:
    """Absolute names of every intriguing module ``path`` imports."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    package = ["intriguing", *rel.parts[:-1]]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if not mod.startswith("intriguing"):
                continue
            for alias in node.names:
                out.add(f"{mod}.{alias.name}" if (PACKAGE.parent / f"{mod}.{alias.name}"
                                                  .replace(".", "/")).with_suffix(".py").exists()
                        or (PACKAGE.parent / f"{mod}.{alias.name}".replace(".", "/")).is_dir()
                        else mod)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("intriguing")}
    return out


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if _layer(
    "intriguing." + ".".join(p.relative_to(PACKAGE).parts)))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path):
    rel = str(path.relative_to(PACKAGE))
    if rel in ENTRY_POINTS:
        return
    layer = rel.split("/")[0]
    for name in _imports(path):
        target = _layer(name)
        if target is None or target == layer:
            continue
        if rel in LIVE_ADAPTER and target == "engine":
            continue
        if layer == "display" and target == "experiments":
            assert name in DISPLAY_MAY_READ, f"{rel} imports {name}: display runs no experiment"
            continue
        assert target in ALLOWED[layer], f"{rel} ({layer}) imports {name} ({target})"


def test_no_engine_or_experiment_module_imports_display():
    offenders = [f"{p.relative_to(PACKAGE)} -> {n}" for p in MODULES
                 if str(p.relative_to(PACKAGE)).split("/")[0] in ("engine", "experiments")
                 for n in _imports(p) if _layer(n) == "display"]
    assert offenders == []


def test_the_reader_sees_what_an_import_resolves_to():
    # The checker itself: a relative import two levels up resolves to the right layer.
    names = _imports(PACKAGE / "experiments" / "blind_spots.py")
    assert "intriguing.engine.zoo" in names and "intriguing.plumbing.claims" in names
