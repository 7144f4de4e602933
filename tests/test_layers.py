"""The package's stages import only downwards: audio < data < models < evaluation < apps.

Every import in ``utils/`` is read from the source (module level and inside
functions alike), so a lazy import that runs back up a stage fails here too.
"""
import ast
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[1] / "utils"
STAGES = ("audio", "data", "models", "evaluation", "apps")  # lowest first
SHARED = {"errors", "atomic"}  # serve every stage, import no stage
MAX_TOP_LEVEL_MODULES = 12


def _stage(module: str) -> str | None:
    """'utils.data.cache' -> 'data'; None for a module outside the stages."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "utils" and parts[1] in STAGES else None


def _imports(path: Path) -> set[str]:
    module = ".".join(path.relative_to(UTILS.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" if _stage(f"{base}.{a.name}") and not _stage(base) else base
                      for a in node.names}
    return {m for m in found if m.startswith("utils")}


SOURCES = sorted(UTILS.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(UTILS)))
def test_imports_run_only_downwards(path):
    own = _stage(".".join(path.relative_to(UTILS.parent).with_suffix("").parts))
    rank = STAGES.index(own) if own else -1
    for imported in _imports(path):
        stage = _stage(imported)
        if stage is None:
            assert imported == "utils" or imported.split(".")[1] in SHARED, imported
            continue
        assert own is not None, f"{path.name} (shared) imports the stage module {imported}"
        assert STAGES.index(stage) <= rank, f"{path.relative_to(UTILS)} ({own}) imports {imported} ({stage}): runs back up"


def test_top_level_stays_small():
    modules = [p for p in UTILS.glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, sorted(p.name for p in modules)
    assert {p.name for p in UTILS.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(STAGES)


def _module_of(path: Path) -> str:
    parts = path.relative_to(UTILS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``utils`` that ``path`` imports anywhere in its code (a name imported from a
    package counts as its submodule when it is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
    return found & modules


def test_no_import_cycle():
    modules = {_module_of(p): p for p in SOURCES}
    graph = {m: _imported_modules(p, set(modules)) - {m} for m, p in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import cycle: " + " -> ".join([*path[path.index(n):], n])
            if n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
