"""The package's layers import one way only: surface -> views -> tools -> research and benchmark -> jobs ->
openrouter -> foundation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "openrouter_research_mcp"
# Higher number = higher layer; a module may import its own layer and any lower one, never a higher one.
LAYERS = {
    "foundation": 0,
    "openrouter": 1,
    "jobs": 2,
    "research": 3,
    "benchmark": 3,
    "tools": 4,
    "views": 5,
    "surface": 6,
}
FOUNDATION = {"_constants", "_logging", "_markdown", "_metrics", "_schema", "_util", "_version", "config", "errors"}


def layer_of(module: str) -> str:
    """`openrouter.client` -> openrouter; `errors` -> foundation; `server` -> surface."""
    head = module.split(".")[0]
    if head in ("openrouter", "jobs", "research", "benchmark", "tools", "views"):
        return head
    return "foundation" if head in FOUNDATION else "surface"


def imports_of(path: Path) -> set[str]:
    """Package-relative names this module imports (absolute or relative), e.g. {'openrouter.client', 'errors'}."""
    here = path.relative_to(PACKAGE).with_suffix("").parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level])
                target = [*base, *(node.module.split(".") if node.module else [])]
                names = [".".join(target)] if node.module else [".".join([*base, a.name]) for a in node.names]
            elif node.module and node.module.startswith("openrouter_research_mcp"):
                names = [node.module.removeprefix("openrouter_research_mcp").lstrip(".")]
            else:
                continue
            found.update(name for name in names if name)
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("openrouter_research_mcp").lstrip(".")
                for a in node.names
                if a.name.startswith("openrouter_research_mcp.")
            )
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_no_module_imports_upward(path: Path) -> None:
    mine = layer_of(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    upward = [name for name in imports_of(path) if LAYERS[layer_of(name)] > LAYERS[mine]]
    assert upward == [], f"{path.relative_to(PACKAGE)} ({mine}) imports from a higher layer: {upward}"


def test_layers_openrouter_never_imports_mcp() -> None:
    for path in (PACKAGE / "openrouter").rglob("*.py"):
        tree = ast.parse(path.read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {
            n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level
        }
        assert "mcp" not in roots, path


def test_layers_checker_reads_layers_and_imports() -> None:
    assert layer_of("tools.state") == "tools" and layer_of("errors") == "foundation" and layer_of("server") == "surface"
    assert "tools.state" in imports_of(PACKAGE / "doctor.py")
    assert {"openrouter.budget", "jobs.store"} <= imports_of(PACKAGE / "research" / "engine.py") | imports_of(
        PACKAGE / "research" / "run.py"
    )


def test_layers_research_and_benchmark_are_peers() -> None:
    for kind, other in (("research", "benchmark"), ("benchmark", "research")):
        for path in (PACKAGE / kind).rglob("*.py"):
            assert not any(layer_of(name) == other for name in imports_of(path)), path
