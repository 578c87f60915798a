"""What ``import pipecat_tavus_interactions`` loads, and that every public name resolves.

Each check runs in a fresh interpreter (a subprocess), so nothing this test session has
already imported can hide a module the package loads. ``benchmarks/importtime.py`` measures
the cost; these tests pin what keeps it down.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = "pipecat_tavus_interactions"
INIT = Path(__file__).resolve().parent.parent / PACKAGE / "__init__.py"

#: Modules a bare import must not load: each belongs to a feature that loads it on first use.
NOT_ON_IMPORT = (
    "pipecat.services.llm_service",  # TavusFunctionCallParams (the LLM service stack)
    "aiohttp",  # the REST client and the simulator's REST server
    "daily",  # the relay's Daily client
    "PIL",  # the simulated room's drawn face
    "pipecat.transports.daily.transport",
    f"{PACKAGE}.simulator",
    f"{PACKAGE}.api",
    f"{PACKAGE}.live",
    f"{PACKAGE}.relay",
    f"{PACKAGE}.replay",
    f"{PACKAGE}.timeline",
    f"{PACKAGE}.tuning",
    f"{PACKAGE}.pipeline.tool_params",
    f"{PACKAGE}.pipeline.recorder",  # the flight recorder: only with record_path
    f"{PACKAGE}.core.recording",
)


def _run(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _is_pipecat(module: str) -> bool:
    return module == "pipecat" or module.startswith("pipecat.")


def test_a_bare_import_loads_neither_pipecat_nor_the_package_modules():
    out = _run(
        "import json, sys\n"
        f"import {PACKAGE}\n"
        "print(json.dumps({'modules': sorted(sys.modules)}))\n"
    )
    ours = sorted(m for m in out["modules"] if m.startswith(PACKAGE))
    assert ours == [PACKAGE, f"{PACKAGE}.exceptions"]
    assert [m for m in out["modules"] if _is_pipecat(m)] == []


def test_a_bots_import_loads_the_facade_and_none_of_the_optional_stacks():
    out = _run(
        "import json, sys\n"
        f"from {PACKAGE} import TavusInteractions, TavusInteractionsParams\n"
        "print(json.dumps({'modules': sorted(sys.modules),\n"
        "    'params_schema_built': TavusInteractionsParams.__pydantic_complete__}))\n"
    )
    loaded = set(out["modules"])
    # What a bot needs is there (so the absences below are not vacuous) ...
    assert {f"{PACKAGE}.pipeline.facade", f"{PACKAGE}.core.connection"} <= loaded
    # ... and what only some bots use is not.
    assert [m for m in NOT_ON_IMPORT if m in loaded] == []
    # The settings' validation schema is built on the first TavusInteractionsParams().
    assert out["params_schema_built"] is False


def test_the_sans_io_core_imports_without_pipecat():
    out = _run(
        "import json, sys\n"
        f"from {PACKAGE}.core import TavusConnection\n"
        f"from {PACKAGE}.protocol import parse_message\n"
        f"from {PACKAGE}.core.records import TurnRecord\n"
        "print(json.dumps({'modules': sorted(sys.modules)}))\n"
    )
    loaded = set(out["modules"])
    assert {f"{PACKAGE}.core.connection", f"{PACKAGE}.protocol"} <= loaded
    assert [m for m in loaded if _is_pipecat(m)] == []
    assert not [m for m in loaded if m.startswith(f"{PACKAGE}.pipeline")]


def test_params_validate_on_first_use_after_the_deferred_schema_build():
    out = _run(
        "import json\n"
        f"from {PACKAGE} import TavusInteractionsParams\n"
        "p = TavusInteractionsParams(conversation_id='c1', tool_timeout_secs=2)\n"
        "try:\n"
        "    TavusInteractionsParams(conversation_id='')\n"
        "    refused = ''\n"
        "except ValueError as exc:\n"
        "    refused = str(exc)\n"
        "print(json.dumps({'timeout': p.tool_timeout_s, 'refused': refused,\n"
        "    'built': TavusInteractionsParams.__pydantic_complete__}))\n"
    )
    assert out["timeout"] == 2.0 and out["built"] is True
    assert "conversation_id must be a non-empty string" in out["refused"]


def test_the_recorder_loads_only_for_a_facade_that_records(tmp_path):
    path = tmp_path / "rec.jsonl"
    out = _run(
        "import json, sys\n"
        f"from {PACKAGE} import TavusInteractions, TavusInteractionsParams\n"
        "plain = TavusInteractions(params=TavusInteractionsParams(conversation_id='c1'))\n"
        f"without = '{PACKAGE}.core.recording' in sys.modules\n"
        "rec = TavusInteractions(params=TavusInteractionsParams(\n"
        f"    conversation_id='c1', record_path={str(path)!r}))\n"
        "rec.recorder.close(rec.stats)\n"
        "print(json.dumps({'without': without, 'plain': plain.recorder is None,\n"
        "    'writer': type(rec.recorder).__name__,\n"
        "    'connection': type(rec.connection).__name__}))\n"
    )
    assert out == {
        "without": False,
        "plain": True,
        "writer": "RecordWriter",
        "connection": "RecordingConnection",
    }
    assert path.read_text().count("\n") >= 2  # the header and the end line were written


def test_every_public_name_resolves_and_dir_lists_it_before_first_use():
    out = _run(
        "import json\n"
        f"import {PACKAGE} as pkg\n"
        "listed = dir(pkg)\n"
        "ns = {}\n"
        f"exec('from {PACKAGE} import *', ns)\n"
        "print(json.dumps({'all': pkg.__all__,\n"
        "    'not_listed': [n for n in pkg.__all__ if n not in listed],\n"
        "    'unresolved': [n for n in pkg.__all__ if n not in ns],\n"
        "    'submodules': [getattr(pkg, n).__name__ for n in ('protocol', 'core', 'params')],\n"
        "    'modules': {n: getattr(ns[n], '__module__', None) or ns[n].__name__\n"
        "                for n in pkg.__all__ if n in ns}}))\n"
    )
    assert len(out["all"]) == len(set(out["all"])) >= 30
    assert out["not_listed"] == []
    assert out["unresolved"] == []
    # Submodules stay reachable as attributes, as when the package imported them up front.
    assert out["submodules"] == [f"{PACKAGE}.protocol", f"{PACKAGE}.core", f"{PACKAGE}.params"]
    # The lazily exported names are the real objects, from their own modules.
    assert out["modules"]["TavusFunctionCallParams"] == f"{PACKAGE}.pipeline.tool_params"
    assert out["modules"]["TavusReplicaRelay"] == f"{PACKAGE}.relay"
    assert out["modules"]["tune_gc"] == f"{PACKAGE}.tuning"
    assert out["modules"]["TavusInteractions"] == f"{PACKAGE}.pipeline.facade"


def test_type_checkers_see_every_lazily_imported_name():
    """Each name of ``_LAZY`` is imported under ``TYPE_CHECKING`` from the module it names."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    checked: dict[str, str] = {}
    lazy: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom):
                    base = "." * imp.level + (imp.module or "")
                    for alias in imp.names:
                        # `from . import events` imports the module `.events` itself
                        source = base if imp.module else base + alias.name
                        checked[alias.asname or alias.name] = source
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if getattr(target, "id", None) == "_LAZY":
            lazy = ast.literal_eval(node.value)
    assert lazy, "the package no longer has a _LAZY table; update this test"
    assert {name: checked.get(name) for name in lazy} == lazy
