"""Import cost: what a bot imports from the package versus ``import pipecat.frames.frames``.

Measured: the CPU time (``time.process_time``) and wall time of one import statement in a
fresh interpreter (``python -c``), interpreter start-up excluded, median of several runs;
the runs of the statements are interleaved, after one untimed warm-up run each (so the
bytecode caches are written). The child interpreters run without
``PYTHONDONTWRITEBYTECODE``, and the run stops if the package's bytecode cache is still
missing after the warm-up: with it set, our modules were compiled from source in every run
while Pipecat's came from the ``.pyc`` files its installer wrote, which overstated our
share. Ours: ``from pipecat_tavus_interactions import TavusInteractions,
TavusInteractionsParams``, what a bot imports (the facade, and with it the processors, the
frames and the core); the ratio is its CPU over the baseline's. A bare ``import
pipecat_tavus_interactions`` is timed too (``ratio_bare``), but it is not the plugin's cost:
every public name is imported on first use, so it loads almost nothing. Baseline: ``import
pipecat.frames.frames``, the least a Pipecat plugin must import (the frame classes);
``import pipecat`` is shown for reference.

Breakdown: ``python -X importtime -c`` with the bot's statement; the modules
that ``import pipecat.frames.frames`` does not also load are what the package adds. Their
self times are summed by package (the first two dotted components of the module name)
(third-party packages by their top-level name) and the largest are reported, with the
cumulative time of the foreign subtrees our own modules import directly and the total
self time of our own modules (``-X importtime`` itself slows imports a little; the shares
are what matter).
"""

from __future__ import annotations

import importlib.util
import os
import re
import statistics
import subprocess
import sys
from typing import Any

OURS = "pipecat_tavus_interactions"
BASELINE = "pipecat.frames.frames"
#: What a bot imports from the package.
BOT = "from pipecat_tavus_interactions import TavusInteractions, TavusInteractionsParams"
#: Label -> the statement timed under it.
STATEMENTS = {
    BASELINE: f"import {BASELINE}",
    "bot": BOT,
    OURS: f"import {OURS}",
    "pipecat": "import pipecat",
}

_SNIPPET = (
    "import time, sys\n"
    "c, t = time.process_time(), time.perf_counter()\n"
    "{statement}\n"
    "c, t = time.process_time() - c, time.perf_counter() - t\n"
    "sys.stdout.write(f'{{c}} {{t}}\\n')\n"
)
#: The children's environment: bytecode caches written and read, as in an installed package.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _once(statement: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", _SNIPPET.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
        env=_ENV,
    )
    cpu, wall = out.stdout.strip().splitlines()[-1].split()
    return float(cpu), float(wall)


def _importtime(statement: str) -> list[tuple[str, int, int, int]]:
    """``(module, self us, cumulative us, depth)`` for every module ``statement`` loads."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
        env=_ENV,
    )
    rows = []
    for line in out.stderr.splitlines():
        m = _LINE.match(line)
        if m:
            depth = (len(m.group(3)) - 1) // 2
            rows.append((m.group(4), int(m.group(1)), int(m.group(2)), depth))
    return rows


def _group(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] in ("pipecat", OURS) else parts[0]


def _parents(rows: list[tuple[str, int, int, int]]) -> list[str | None]:
    """The importing module of each row (``-X importtime`` prints children first)."""
    parents: list[str | None] = []
    for i, (_n, _s, _c, depth) in enumerate(rows):
        parent = None
        for name, _s2, _c2, d2 in rows[i + 1 :]:
            if d2 == depth - 1:
                parent = name
                break
        parents.append(parent)
    return parents


def _check_bytecode_cached() -> None:
    """Stop when the warm-up could not write our bytecode cache (the timings would be off)."""
    spec = importlib.util.find_spec(OURS)
    origin = spec.origin if spec is not None else None
    if origin is None or not os.path.exists(importlib.util.cache_from_source(origin)):
        raise SystemExit(
            f"no bytecode cache for {OURS} after the warm-up: make its directory writable "
            "(every run would compile the package from source)"
        )


def measure(*, runs: int = 7, top: int = 8) -> dict[str, Any]:
    """Time the imports and break down what ours adds.

    Args:
        runs: Fresh interpreters per statement (interleaved).
        top: How many contributors to report.

    Returns:
        Median CPU and wall seconds per statement, the ratio of the bot's import to the
        baseline (CPU; ``ratio_bare`` for the bare package import), and the top
        contributors of the modules the bot's import loads beyond the baseline.
    """
    for statement in STATEMENTS.values():
        _once(statement)  # warm-up: bytecode caches
    _check_bytecode_cached()
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in STATEMENTS}
    for _ in range(runs):
        for label, statement in STATEMENTS.items():
            samples[label].append(_once(statement))
    med = {
        m: {
            "cpu_s": statistics.median(c for c, _ in v),
            "wall_s": statistics.median(w for _, w in v),
        }
        for m, v in samples.items()
    }
    base_rows = _importtime(STATEMENTS[BASELINE])
    ours_rows = _importtime(BOT)
    base_names = {r[0] for r in base_rows}
    extra = [r for r in ours_rows if r[0] not in base_names]
    by_group: dict[str, int] = {}
    for name, self_us, _cum, _depth in extra:
        by_group[_group(name)] = by_group.get(_group(name), 0) + self_us
    groups = sorted(by_group.items(), key=lambda kv: -kv[1])[:top]
    # The foreign subtrees our own modules import directly, beyond the baseline's.
    direct = [
        (row[0], row[2], parent)
        for row, parent in zip(ours_rows, _parents(ours_rows), strict=True)
        if row[0] not in base_names
        and not row[0].startswith(OURS)
        and parent is not None
        and parent.startswith(OURS)
    ]
    subtrees = sorted(direct, key=lambda kv: -kv[1])[:top]
    own_self = sum(r[1] for r in ours_rows if r[0].startswith(OURS))
    return {
        "runs": runs,
        "median": med,
        "statements": STATEMENTS,
        "ratio": med["bot"]["cpu_s"] / med[BASELINE]["cpu_s"],
        "ratio_wall": med["bot"]["wall_s"] / med[BASELINE]["wall_s"],
        "ratio_bare": med[OURS]["cpu_s"] / med[BASELINE]["cpu_s"],
        "modules": {"baseline": len(base_rows), "ours": len(ours_rows), "extra": len(extra)},
        "extra_self_s": sum(r[1] for r in extra) / 1e6,
        "top_groups": [{"package": g, "self_s": us / 1e6} for g, us in groups],
        "own_self_s": own_self / 1e6,
        "top_subtrees": [
            {"module": n, "cumulative_s": us / 1e6, "imported_by": parent}
            for n, us, parent in subtrees
        ],
    }


def main() -> None:
    """Print the measurement as JSON."""
    import json

    print(json.dumps(measure(), indent=1))


if __name__ == "__main__":
    main()
