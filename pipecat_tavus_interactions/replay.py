"""Replay, check and draw a flight recording: ``python -m pipecat_tavus_interactions.replay``.

::

    python -m pipecat_tavus_interactions.replay REC.jsonl            # the turn ledger, as text
    python -m pipecat_tavus_interactions.replay REC.jsonl --check    # exit 1 on a difference
    python -m pipecat_tavus_interactions.replay REC.jsonl --html timeline.html
    python -m pipecat_tavus_interactions.replay REC.jsonl --json     # turn summaries, JSONL
    python -m pipecat_tavus_interactions.replay REC.jsonl --realtime # at the recorded pace

A recording is written with ``TavusInteractionsParams(record_path=...)``; see
``docs/recording.md``. The replay drives this version's conversation core with the recorded
calls (as fast as possible, the recorded times passed in; ``--realtime`` also waits them
out) and, with ``--check``, compares its effects and messages with the recorded ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from loguru import logger

from .core.recording import Recording, parse
from .core.replay import Replayed, Replayer
from .exceptions import UsageError
from .timeline import build_timeline, render_text
from .timeline_html import render_html


def load(path: str | Path) -> Recording:
    """Read and parse a recording file.

    Raises:
        UsageError: The file is not a recording.
    """
    with Path(path).open(encoding="utf-8") as f:
        return parse(f)


def _pace(recording: Recording):
    start = time.monotonic()
    t0 = float(recording.header.get("t", 0.0))

    def wait(replayed: Replayed) -> None:
        delay = (replayed.step.t - t0) - (time.monotonic() - start)
        if delay > 0:
            time.sleep(delay)

    return wait


def check(recording: Recording, *, realtime: bool = False) -> tuple[int, str]:
    """Replay and compare; return the exit code and the report.

    Returns:
        ``(0, report)`` when this version gives the recorded effects and messages, else
        ``(1, report)`` naming the first difference.
    """
    result = Replayer(recording).run(check=True, on_step=_pace(recording) if realtime else None)
    lines = [f"replayed {result.steps} calls"]
    code = 0
    if recording.dropped:
        lines.append(f"the recorder dropped {recording.dropped} line(s): the replay is partial")
        code = 1
    if result.differences:
        first = result.differences[0]
        lines.append(f"{len(result.differences)} call(s) differ; the first:")
        lines.append(first.describe())
        code = 1
    elif code == 0:
        lines.append("same effects and messages as recorded")
    return code, "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m pipecat_tavus_interactions.replay", description=__doc__.splitlines()[0]
    )
    parser.add_argument("recording", help="a JSONL recording (record_path=...)")
    parser.add_argument("--check", action="store_true", help="compare with the recording")
    parser.add_argument("--html", metavar="OUT", help="write the HTML timeline to OUT")
    parser.add_argument("--text", action="store_true", help="print the text timeline")
    parser.add_argument("--json", action="store_true", help="print the turn summaries")
    parser.add_argument("--realtime", action="store_true", help="replay at the recorded pace")
    parser.add_argument("--verbose", action="store_true", help="show the core's debug log")
    args = parser.parse_args(argv)
    if not args.verbose:
        logger.disable("pipecat_tavus_interactions")  # the core's debug lines, while replaying
    try:
        return _main(args)
    finally:
        logger.enable("pipecat_tavus_interactions")


def _main(args: argparse.Namespace) -> int:
    try:
        recording = load(args.recording)
    except (OSError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    code = 0
    if args.check:
        code, report = check(recording, realtime=args.realtime)
        print(report)
    if args.json:
        replayer = Replayer(recording)
        replayer.run(check=False)
        for turn in replayer.connection.ledger.turns:
            print(json.dumps(turn.summary(), default=repr))
    if args.html:
        timeline = build_timeline(recording)
        Path(args.html).write_text(render_html(timeline), encoding="utf-8")
        print(f"wrote {args.html}")
    if args.text or not (args.check or args.json or args.html):
        if args.realtime and not args.check:
            Replayer(recording).run(check=False, on_step=_pace(recording))
        print(render_text(build_timeline(recording)), end="")
    return code


if __name__ == "__main__":
    sys.exit(main())
