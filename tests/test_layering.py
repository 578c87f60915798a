"""The package's layers import downward only, and the pure core stays free of frameworks.

docs/architecture.md: (1) pure core, (2) Pipecat drivers, (3) edges. A module may
import from its own layer and the layers below it, never above. The check reads the source
with ``ast`` (nothing is imported), so it also sees imports inside functions and under
``TYPE_CHECKING``. Every module of the package must appear in ``LAYERS``; a new module fails
here until someone decides where it belongs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "pipecat_tavus_interactions"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE

CORE, GLUE, EDGE, ROOT = 0, 1, 2, 3
LAYER_NAMES = {CORE: "core", GLUE: "glue", EDGE: "edge", ROOT: "package root"}

#: Top-level module (or subpackage) of the package -> its layer.
LAYERS: dict[str, int] = {
    # 1. pure core: the wire vocabulary and the conversation state machine; no asyncio,
    #    aiohttp, pipecat or daily
    "exceptions": CORE,
    "events": CORE,
    "interactions": CORE,
    "protocol": CORE,
    "wire_fields": CORE,
    "wire_events": CORE,
    "wire_interactions": CORE,
    "wire_size": CORE,
    "redaction": CORE,
    "params": CORE,
    "core": CORE,
    # 2. Pipecat drivers
    "pipeline": GLUE,
    "tool_schema": GLUE,
    "tuning": GLUE,
    # 3. edges
    "api": EDGE,
    "api_bodies": EDGE,
    "api_http": EDGE,
    "api_models": EDGE,
    "api_scope": EDGE,
    "simulator": EDGE,
    "live": EDGE,
    "relay": EDGE,
    "relay_room": EDGE,
    "timeline": EDGE,
    "timeline_html": EDGE,
    "replay": EDGE,
    # the curated public API re-exports from every layer
    "__init__": ROOT,
}

#: Top-level names the pure core must not import.
CORE_FORBIDDEN = {"asyncio", "aiohttp", "pipecat", "daily"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _component(module: str) -> str:
    """Return the top-level component of a package module name ("__init__" for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_package_module(module: str) -> bool:
    rel = Path(*module.split(".")[1:]) if "." in module else Path()
    return (PACKAGE_DIR / rel).with_suffix(".py").exists() or (
        PACKAGE_DIR / rel / "__init__.py"
    ).exists()


def collect_imports(source: str, module: str, is_package: bool) -> tuple[set[str], set[str]]:
    """Return ``(package modules imported, external top-level names imported)``."""
    internal: set[str] = set()
    external: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    internal.add(alias.name)
                else:
                    external.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = module.split(".")
                if not is_package:
                    base_parts = base_parts[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                if node.module is None or target == PACKAGE:
                    # `from . import events` names submodules; other names come from the
                    # package itself.
                    for alias in node.names:
                        sub = f"{target}.{alias.name}"
                        internal.add(sub if _is_package_module(sub) else target)
                else:
                    internal.add(target)
            else:
                external.add(target.split(".")[0])
    return internal, external


def _source_files() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


FILES = _source_files()
IDS = [str(p.relative_to(PACKAGE_DIR)) for p in FILES]


def _imports_of(path: Path) -> tuple[set[str], set[str]]:
    return collect_imports(
        path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py"
    )


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_every_module_is_classified(path):
    component = _component(_module_name(path))
    assert component in LAYERS, (
        f"{path.relative_to(PACKAGE_DIR)} is not classified: add {component!r} to LAYERS in "
        "tests/test_layering.py as CORE (pure: no asyncio/aiohttp/pipecat), GLUE (Pipecat "
        "processors and frames) or EDGE (REST client, simulator, live wiring)"
    )


CORE_FILES = [p for p in FILES if LAYERS.get(_component(_module_name(p))) == CORE]


@pytest.mark.parametrize(
    "path", CORE_FILES, ids=[str(p.relative_to(PACKAGE_DIR)) for p in CORE_FILES]
)
def test_core_module_imports_no_framework(path):
    _, external = _imports_of(path)
    bad = external & CORE_FORBIDDEN
    assert not bad, f"{path.relative_to(PACKAGE_DIR)} is pure core but imports {sorted(bad)}"


def test_the_conversation_core_is_checked_for_purity():
    names = {str(p.relative_to(PACKAGE_DIR)) for p in CORE_FILES}
    assert {"core/connection.py", "core/sender.py", "params.py", "protocol.py"} <= names


def upward_imports(module: str, internal: set[str]) -> list[str]:
    """Return the imports of ``module`` that reach a higher layer than its own."""
    layer = LAYERS[_component(module)]
    upward = []
    for target in sorted(internal):
        target_layer = LAYERS.get(_component(target))
        # An unclassified target is reported by test_every_module_is_classified.
        if target_layer is not None and target_layer > layer:
            upward.append(f"{target} ({LAYER_NAMES[target_layer]})")
    return upward


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_imports_run_downward(path):
    module = _module_name(path)
    if _component(module) not in LAYERS:
        pytest.skip("unclassified; reported by test_every_module_is_classified")
    upward = upward_imports(module, _imports_of(path)[0])
    assert not upward, (
        f"{module} is {LAYER_NAMES[LAYERS[_component(module)]]} but imports from a higher "
        f"layer: {upward}; move the shared code down a layer or invert the dependency"
    )


def test_upward_imports_are_caught():
    core = f"{PACKAGE}.protocol"
    glue = f"{PACKAGE}.pipeline.frames"
    assert upward_imports(core, {glue}) == [f"{glue} (glue)"]
    assert upward_imports(core, {PACKAGE}) == [f"{PACKAGE} (package root)"]
    assert upward_imports(glue, {f"{PACKAGE}.simulator.wire"}) == [
        f"{PACKAGE}.simulator.wire (edge)"
    ]
    assert upward_imports(glue, {f"{PACKAGE}.events", f"{PACKAGE}.core.tools"}) == []
    assert upward_imports(f"{PACKAGE}.api", {f"{PACKAGE}.tool_schema"}) == []


def test_collector_sees_every_import_form():
    source = """
from __future__ import annotations
import json, asyncio.tasks
from typing import TYPE_CHECKING
from . import events as ev, __version__
from .interactions import Echo
from pipecat_tavus_interactions.api import TavusAPI
import pipecat_tavus_interactions.frames
if TYPE_CHECKING:
    from pipecat.frames.frames import Frame

def later():
    import aiohttp
    from daily import CallClient
"""
    internal, external = collect_imports(source, f"{PACKAGE}.protocol", False)
    assert internal == {
        f"{PACKAGE}.events",
        PACKAGE,  # `from . import __version__` names the package root
        f"{PACKAGE}.interactions",
        f"{PACKAGE}.api",
        f"{PACKAGE}.frames",
    }
    assert external == {"__future__", "json", "asyncio", "typing", "pipecat", "aiohttp", "daily"}


def test_collector_resolves_relative_imports_inside_a_subpackage():
    source = "from . import wire\nfrom .. import protocol\nfrom ..events import Event\n"
    internal, _ = collect_imports(source, f"{PACKAGE}.simulator.persona", False)
    assert {_component(m) for m in internal} == {"simulator", "protocol", "events"}
    internal, _ = collect_imports("from . import persona\n", f"{PACKAGE}.simulator", True)
    assert {_component(m) for m in internal} == {"simulator"}


def test_the_real_protocol_module_is_seen_importing_events():
    internal, external = _imports_of(PACKAGE_DIR / "protocol.py")
    assert f"{PACKAGE}.events" in internal
    assert f"{PACKAGE}.interactions" in internal
    assert "math" in external


# --- no import cycles, not even under TYPE_CHECKING --------------------------------------


def import_graph() -> dict[str, set[str]]:
    """Return module -> the package modules it imports (every form, every place)."""
    graph: dict[str, set[str]] = {}
    for path in FILES:
        module = _module_name(path)
        graph[module] = {m for m in _imports_of(path)[0] if m != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle (a list of modules, first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_there_is_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_cycle_finder_finds_a_type_checking_cycle():
    a = f"{PACKAGE}.pipeline.input"
    b = f"{PACKAGE}.pipeline.facade"
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .facade import X\n"
    internal, _ = collect_imports(source, a, False)
    assert internal == {b}
    cycle = find_cycle({a: internal, b: {a}})
    assert cycle is not None and set(cycle) == {a, b} and cycle[0] == cycle[-1]
    assert find_cycle({a: {b}, b: set()}) is None


# --- modules a reader can hold in their head ------------------------------------------------

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def oversized(path: Path) -> list[str]:
    """Return what in ``path`` is over the size limits (the module, or its functions)."""
    source = path.read_text(encoding="utf-8")
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"module: {lines} lines")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{node.name}(): {length} lines")
    return found


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_modules_and_functions_stay_small(path):
    assert oversized(path) == [], (
        f"{path.relative_to(PACKAGE_DIR)} is over the limits "
        f"({MAX_MODULE_LINES} lines a module, {MAX_FUNCTION_LINES} a function): split it"
    )


def test_the_size_check_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x = {i}" for i in range(MAX_FUNCTION_LINES))
    path = tmp_path / "long.py"
    path.write_text(f"def long():\n{body}\n", encoding="utf-8")
    assert oversized(path) == [f"long(): {MAX_FUNCTION_LINES + 1} lines"]


# --- every error the package raises derives from its error tree --------------------------

BUILTIN_ERRORS = {"ValueError", "TypeError", "RuntimeError", "KeyError", "Exception"}


def builtin_raises(path: Path) -> list[str]:
    """Return ``raise X(...)`` of a builtin exception class in ``path``, as ``line: X``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            if isinstance(func, ast.Name) and func.id in BUILTIN_ERRORS:
                found.append(f"{node.lineno}: {func.id}")
    return found


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_errors_raised_derive_from_the_package_error_tree(path):
    assert builtin_raises(path) == [], (
        f"{path.relative_to(PACKAGE_DIR)} raises builtin errors: use the package's "
        "(ConfigurationError is a ValueError, UsageError a RuntimeError, ...)"
    )


def test_the_error_check_sees_a_builtin_raise(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("def f():\n    raise ValueError('no')\n", encoding="utf-8")
    assert builtin_raises(path) == ["2: ValueError"]
