"""Process-wide tuning for bot processes that run many conversations.

:func:`tune_gc` is the one helper: it changes CPython's garbage collector for a long-running
process that allocates many short-lived objects (every Pipecat frame is one), which is what
a bot process with hundreds of conversations is. ``docs/scale.md`` gives the measured effect
and the other settings that matter at scale (observers, ``bot_speaking_interval_s``).

Nothing in the package calls it: it changes the whole interpreter, so the application
decides.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

from .exceptions import ConfigurationError

#: Default generation-0 threshold of :func:`tune_gc` (CPython's own is 700).
GEN0_THRESHOLD = 50_000


@dataclass(frozen=True)
class GcTuning:
    """What :func:`tune_gc` changed, to report or to undo.

    Parameters:
        previous_thresholds: ``gc.get_threshold()`` before the call (pass them to
            ``gc.set_threshold(*...)`` to undo the thresholds).
        thresholds: ``gc.get_threshold()`` after the call.
        frozen: How many objects are in the permanent generation after the call
            (``gc.get_freeze_count()``); ``gc.unfreeze()`` undoes the freeze.
    """

    previous_thresholds: tuple[int, int, int]
    thresholds: tuple[int, int, int]
    frozen: int


def tune_gc(*, gen0_threshold: int = GEN0_THRESHOLD, freeze: bool = True) -> GcTuning:
    """Make garbage collection cheaper and its pauses shorter in a bot process.

    Call it once the pipelines have started (for example from the last worker's
    ``on_pipeline_started`` handler, or after ``runner.run()`` has been scheduled and the
    workers report started), so that what start-up allocated (modules, classes, the
    pipelines themselves) is frozen:

    1. ``gc.collect()`` then ``gc.freeze()``: every object alive now moves to the
       permanent generation, which later collections never traverse. A full collection
       then costs what the conversations allocated since, not the whole heap.
    2. ``gc.set_threshold(gen0_threshold, ...)``: the youngest generation is collected
       every ``gen0_threshold`` net allocations instead of every 700, so far fewer
       collections run; most frames die young by reference counting and never reach one.
       The older generations' thresholds are kept.

    Reference counting frees almost everything a conversation allocates; the collector only
    finds cycles, so raising the threshold costs memory only in proportion to the cycles
    made between collections.

    Args:
        gen0_threshold: The generation-0 threshold to set (pass ``gc.get_threshold()[0]``
            to keep the current one).
        freeze: Collect, then freeze what is alive now.

    Returns:
        What changed (:class:`GcTuning`).

    Raises:
        ConfigurationError: ``gen0_threshold`` is not a positive integer.
    """
    if isinstance(gen0_threshold, bool) or not isinstance(gen0_threshold, int):
        raise ConfigurationError(f"gen0_threshold must be an int, got {gen0_threshold!r}")
    if gen0_threshold < 1:
        raise ConfigurationError(
            f"gen0_threshold must be at least 1 (0 would turn the collector off), "
            f"got {gen0_threshold}"
        )
    previous = gc.get_threshold()
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(gen0_threshold, previous[1], previous[2])
    return GcTuning(
        previous_thresholds=previous,
        thresholds=gc.get_threshold(),
        frozen=gc.get_freeze_count(),
    )


__all__ = ["GEN0_THRESHOLD", "GcTuning", "tune_gc"]
