"""The import and size rules of docs/architecture.md, read from the source with ``ast``.

- no import cycle among labelloop's modules, counting imports inside functions and under
  ``TYPE_CHECKING``;
- streamlit only in ``app.py`` and ``labeling/ui/``;
- ``strategies/`` and ``weak_supervision/`` never import ``labeling``;
- the facade (``labeling.workspace``) is imported only from the layers above it;
- function-local imports only of slow third-party packages, each group with its reason;
- subpackage ``__init__`` files hold a docstring only;
- and the house's size rules: a module of ``labeling/`` at most 500 lines, a function at most 60
  (def line to last line), but for a short list of exceptions, each with its reason.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("labeling", "strategies", "weak_supervision")
# Who may import the facade: the layers above it (CLI, UI, demo, the role-checked session,
# the worker process's entry) and the package's own __init__.
ABOVE_THE_FACADE = (
    "labeling",
    "labeling.cli",
    "labeling.ui",
    "labeling.service",
    "labeling.demo",
    "labeling.annotation.session",
    "labeling.rounds.worker",
)
# Packages slow enough to import only where used (docs/architecture.md says why each).
SLOW_PACKAGES = {
    "alembic", "altair", "cleanlab", "dask", "distributed", "joblib", "krippendorff", "modAL",
    "pandas", "pyarrow", "rich", "scipy", "skops", "sklearn", "snorkel", "threadpoolctl",
    "torch", "transformers", "uvicorn", "vl_convert",
}  # fmt: skip
# __init__ files that are more than a docstring: the public entry points.
ENTRY_INITS = {
    "labeling",
    "labeling.cli",
    # Alembic's script folder (env.py, versions/): run as `python -m labeling.store.migrations`.
    "labeling.store.migrations",
    "strategies",
    "weak_supervision",
    "weak_supervision.apply",
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported project module, or the third-party top-level name
    line: int
    local: bool  # inside a function
    project: bool


def _modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            # `from package import module` imports that module; `from module import name`
            # imports the module.
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        local, parent = False, node
        while parent in parents:
            parent = parents[parent]
            if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef):
                local = True
                break
        for name in names:
            target = _resolve(name)
            if target is not None:
                if target != module:
                    found.append(Import(module, target, node.lineno, local, True))
            else:
                found.append(Import(module, name.split(".")[0], node.lineno, local, False))
    return found


IMPORTS = [imp for module, path in MODULES.items() for imp in _imports(module, path)]


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in IMPORTS:
        if imp.project:
            graph[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(MODULES)))
    try:
        for node in sorted(MODULES):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return found


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _where(imp: Import) -> str:
    return f"{MODULES[imp.source].relative_to(ROOT)}:{imp.line} imports {imp.target}"


def test_the_rules_see_every_module_and_its_imports():
    # A guard on the guard: the walk must find the packages and their imports.
    assert {"labeling.workspace", "labeling.store.db", "strategies", "weak_supervision"} <= set(
        MODULES
    )
    assert any(i.target == "labeling.store.db" for i in IMPORTS if i.source == "labeling.context")
    assert len(IMPORTS) > 300


def test_no_import_cycle():
    assert _cycles() == []


def test_streamlit_only_in_the_ui():
    bad = [
        _where(i)
        for i in IMPORTS
        if i.target == "streamlit" and not _within(i.source, ("app", "labeling.ui"))
    ]
    assert bad == []


def test_strategies_and_weak_supervision_stand_alone():
    bad = [
        _where(i)
        for i in IMPORTS
        if _within(i.source, ("strategies", "weak_supervision"))
        and _within(i.target, ("labeling",))
    ]
    assert bad == []


def test_only_the_layers_above_import_the_facade():
    bad = [
        _where(i)
        for i in IMPORTS
        if i.target == "labeling.workspace"
        and not any(i.source == m or i.source.startswith(m + ".") for m in ABOVE_THE_FACADE[1:])
        and i.source != ABOVE_THE_FACADE[0]
    ]
    assert bad == []


def _reason_given(path: Path, line: int) -> bool:
    """The import line carries a comment, or the group it opens does (on it or just above)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    row = line - 1
    while row >= 0:
        text = lines[row]
        if "#" in text:
            return True
        previous = lines[row - 1].strip() if row else ""
        if previous.startswith("#"):
            return True
        if previous.startswith(("import ", "from ")):
            row -= 1
            continue
        return False
    return False


def test_function_local_imports_are_slow_packages_with_a_reason():
    local = [i for i in IMPORTS if i.local]
    project = [_where(i) for i in local if i.project]
    assert project == [], "import project modules at the top of the module"
    fast = [_where(i) for i in local if not i.project and i.target not in SLOW_PACKAGES]
    assert fast == [], "only slow packages are imported inside functions"
    silent = [_where(i) for i in local if not _reason_given(MODULES[i.source], i.line)]
    assert silent == [], "say why the import is local, in a comment on it or just above"


def test_subpackage_inits_hold_only_a_docstring():
    bad = []
    for module, path in MODULES.items():
        if path.name != "__init__.py" or module in ENTRY_INITS:
            continue
        body = ast.parse(path.read_text(encoding="utf-8")).body
        if len(body) != 1 or not isinstance(body[0], ast.Expr):
            bad.append(str(path.relative_to(ROOT)))
    assert bad == []


# The house's size rules (docs/architecture.md): a module up to MAX_MODULE_LINES lines, a
# function up to MAX_FUNCTION_LINES lines from its def line to its last line.
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
# Paths under labeling/. Frozen schema history, never edited once released: neither rule.
FROZEN = ("store/migrations/versions/",)
LONG_MODULES = {"demo/words.py"}  # the demo's word lists: data, not logic
# "path:function": none today.
LONG_FUNCTIONS: set[str] = set()


def _sources() -> dict[str, str]:
    base = ROOT / "labeling"
    found = {}
    for path in sorted(base.rglob("*.py")):
        where = path.relative_to(base).as_posix()
        if not where.startswith(FROZEN):
            found[where] = path.read_text(encoding="utf-8")
    return found


SOURCES = _sources()


def _function_lines() -> dict[str, tuple[int, int]]:
    """ "path:name" -> (def line, length) of every function, the longest of a repeated name."""
    found: dict[str, tuple[int, int]] = {}
    for where, text in SOURCES.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                key = f"{where}:{node.name}"
                if length > found.get(key, (0, 0))[1]:
                    found[key] = (node.lineno, length)
    return found


FUNCTION_LINES = _function_lines()


def test_the_size_rules_see_every_module_and_function():
    assert "workspace.py" in SOURCES and "demo/words.py" in SOURCES
    assert not any(where.startswith(FROZEN) for where in SOURCES)
    assert "config.py:load_config" in FUNCTION_LINES and len(FUNCTION_LINES) > 1000


def test_every_module_is_at_most_500_lines():
    long = [
        f"labeling/{where}: {len(text.splitlines())} lines, over the limit of {MAX_MODULE_LINES}"
        for where, text in SOURCES.items()
        if len(text.splitlines()) > MAX_MODULE_LINES and where not in LONG_MODULES
    ]
    advice = "split each along a seam, and list the new module in docs/architecture.md"
    assert not long, advice + ":\n" + "\n".join(long)


def test_every_script_of_the_pages_is_at_most_500_lines():
    # The Label page's scripts are parts joined at load (labeling/ui/views/label_buffer.py).
    scripts = sorted((ROOT / "labeling").rglob("*.js"))
    assert len(scripts) > 3
    long = [
        f"{path.relative_to(ROOT)}: {n} lines, over the limit of {MAX_MODULE_LINES}"
        for path in scripts
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, "split each by concern into parts joined at load:\n" + "\n".join(long)


def test_every_function_is_at_most_60_lines():
    long = [
        f"labeling/{key.replace(':', ' ', 1)}() at line {line}: {length} lines, over the limit "
        f"of {MAX_FUNCTION_LINES}"
        for key, (line, length) in sorted(FUNCTION_LINES.items())
        if length > MAX_FUNCTION_LINES and key not in LONG_FUNCTIONS
    ]
    advice = "extract well-named steps (the checks, the work, the printing)"
    assert not long, advice + ":\n" + "\n".join(long)


def test_every_size_exception_is_still_needed():
    # One that no longer applies comes off its list, so that it hides nothing later.
    short_modules = [
        w for w in sorted(LONG_MODULES) if len(SOURCES.get(w, "").splitlines()) <= MAX_MODULE_LINES
    ]
    short_functions = [
        key
        for key in sorted(LONG_FUNCTIONS)
        if FUNCTION_LINES.get(key, (0, 0))[1] <= MAX_FUNCTION_LINES
    ]
    assert short_modules == [], "take these off LONG_MODULES"
    assert short_functions == [], "take these off LONG_FUNCTIONS"
