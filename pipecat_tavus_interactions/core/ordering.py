"""Put inbound events in ``seq`` order and drop the duplicates Tavus sends.

This module owns :class:`EventOrderer`, the pure (no asyncio, no pipecat) stage between
:func:`~pipecat_tavus_interactions.protocol.parse_message` and everything that acts on events.
It does three things:

- **Re-ordering.** Tavus stamps every broadcast event with one monotonic ``seq`` per
  conversation, but the data channel may deliver them out of order. An event that arrives
  ahead of a missing ``seq`` is held until the gap fills or for at most ``window_s``; then the
  gap is given up, the held events are released in order and the gap is counted. An event
  whose ``seq`` was given up and that turns up later is released at once and counted as late.
  Events without ``seq`` (older deployments) pass straight through.
- **De-duplication**, with bounded memory:

  a. the same ``seq`` twice;
  b. the ``pal``/``replica`` twin of one event. Twins may carry different ``seq`` values, so
     they are keyed on content (normalised role, event type, ``turn_idx``, ``inference_id``,
     ``content_index``, ``final``, ``is_interrupted``, ``speech`` as applicable). A tool call
     delivered again with the same ``tool_call_id`` is dropped the same way;
  c. the second *form* of one speaking transition: Tavus sends a role-specific event
     (``conversation.replica.started_speaking``) and a role-agnostic one
     (``conversation.started_speaking``) for the same change. The first to be released wins.

  Twins and forms are judged in release order (after re-ordering), so the one with the lower
  ``seq`` is kept, whatever order they arrived in.
- **Accounting**: :attr:`EventOrderer.stats`.

Time is passed in (``now``, float seconds on a monotonic clock), never read, so the glue
decides the clock and tests inject it. :meth:`EventOrderer.next_deadline` tells the glue when
:meth:`EventOrderer.poll` next has work, so it can arm one timer instead of spinning.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections import deque
from heapq import heappop, heappush

from loguru import logger

from .. import events as ev
from ..exceptions import ConfigurationError
from .dedup import ContentDedup

# Lower bound of the "never seen" range below the first seq (seq values are integers).
_BELOW_ALL = -(2**63)
_ABOVE_ALL = 2**63

_ids = itertools.count()


class EventOrderer(ContentDedup):
    """Re-orders events by ``seq`` and drops duplicate deliveries, twins and forms.

    Feed every parsed event to :meth:`push` and act on the events it returns, in the order
    returned. When :meth:`next_deadline` is not ``None``, call :meth:`poll` at (or after) that
    time. Call :meth:`flush` at shutdown.

    ``seq`` rules: the first ``seq`` seen sets the baseline. ``seq`` equal to the next
    expected one is released with any held successors that are now contiguous; a higher one
    is held (a gap); a lower one is either late (its ``seq`` was given up with a gap, or is
    below the baseline: released at once) or a copy. A copy is told by its content: the
    ``timestamp`` of the last ``restart_distance`` released ``seq`` values is remembered
    (Tavus stamps every event; a copy carries the same stamp, a restarted counter's event a
    new one), and only the same ``seq`` with the same ``timestamp`` is a duplicate
    (dropped, counted). The counter restarted (a new replica session) when a lower ``seq``
    comes with new content, or lies more than ``restart_distance`` below (beyond what is
    remembered): everything held is released, the new value becomes the baseline, and
    :attr:`restarted_with` names the first event of the new counter (the conversation core
    starts a new turn numbering there). :meth:`new_session` says so in advance, when the
    replica left the room and joined again.

    Speaking transitions are identified by ``(role, speaking, turn_idx, inference_id)``.
    When the ``inference_id`` is missing on either side, a second "started" for a role that is
    already started (or "stopped" for one already stopped) in the same ``turn_idx`` is a
    duplicate form. For the user role ``inference_id`` is not compared at all, because Tavus
    changes it while the user is still talking (speculative inference).

    Legitimate repeats are kept: two replica spans in one turn with different
    ``inference_id`` values, identical user text in different turns, streaming snapshots with
    different ``content_index``. Events that carry neither ``turn_idx`` nor ``inference_id``
    are never content-deduplicated (there is nothing to tell a repeat from a copy).

    Not thread-safe: use it from one task.
    """

    def __init__(
        self,
        *,
        window_s: float = 0.05,
        dedup_memory: int = 512,
        max_held: int = 1024,
        restart_distance: int = 1024,
    ):
        """Create an orderer.

        Args:
            window_s: How long a gap in ``seq`` may hold later events, in seconds.
            dedup_memory: How many content keys (twins, speaking transitions) and given-up
                ``seq`` ranges to remember. At least the last ``dedup_memory`` keys are
                remembered (at most twice that); older ones are forgotten, oldest first.
            max_held: How many events may be held at once. Past that, the oldest gap is
                released early and counted as ``overflow``.
            restart_distance: How many released ``seq`` values are remembered with their
                content; a ``seq`` further below the expected one is a restarted counter.

        Raises:
            ConfigurationError: A size or duration is not positive.
        """
        if window_s < 0:
            raise ConfigurationError(f"window_s must be >= 0, got {window_s}")
        if dedup_memory < 1 or max_held < 1 or restart_distance < 1:
            raise ConfigurationError("dedup_memory, max_held and restart_distance must be >= 1")
        self._name = f"{type(self).__name__}#{next(_ids)}"
        self._window = float(window_s)
        self._dedup_memory = dedup_memory
        self._max_held = max_held
        self._restart_distance = restart_distance
        # What the last ``restart_distance`` released seqs carried, slot = seq % distance.
        # (seq, timestamp) of the last released seqs, slot seq % restart_distance.
        self._ring: list[tuple[int, float | None] | None] = [None] * restart_distance
        #: The first event of the newest ``seq`` counter after a restart (else ``None``).
        self.restarted_with: ev.Event | None = None
        self._new_session = False

        self._expected: int | None = None
        self._held: dict[int, ev.Event] = {}
        self._heap: list[int] = []  # the held seqs; heap[0] is always the next to release
        self._arrivals: deque[tuple[float, int]] = deque()  # (arrival time, seq), push order
        # Sorted, disjoint, inclusive ranges of seq values that were given up (or lie below
        # the baseline): a seq found here is late, any other seq below expected is a copy.
        self._given_up: list[tuple[int, int]] = []
        # Recent content keys in two generations: new keys go into ``_keys``; when it holds
        # ``dedup_memory`` keys it becomes ``_old_keys`` and the oldest generation is dropped.
        # So at least the last ``dedup_memory`` keys (at most twice that) are remembered, at
        # the cost of plain dict operations. Speaking transitions map to the event types seen
        # for them (to tell a twin from another form); other keys map to None.
        self._keys: dict[tuple, list[str] | None] = {}
        self._old_keys: dict[tuple, list[str] | None] = {}
        # role -> (speaking, turn_idx, inference_id, event types) of the last transition
        self._speaking: dict[str, tuple[bool, int | None, str | None, list[str]]] = {}
        self._filters = self._content_filters()
        self._released = self._held_total = self._gaps_released = self._late = 0
        self._duplicate_seq = self._duplicate_twin = self._duplicate_form = 0
        self._no_seq = self._overflow = self._restarts = 0

    def __str__(self) -> str:
        return self._name

    # --- public API -------------------------------------------------------------------

    def push(self, event: ev.Event, now: float) -> list[ev.Event]:
        """Accept one parsed event and return the events now releasable, in ``seq`` order.

        Args:
            event: The parsed event.
            now: The current time, seconds on a monotonic clock.

        Returns:
            The events to act on now, oldest first (often just ``[event]``, possibly empty
            when it was held or dropped as a duplicate).
        """
        seq = event.seq
        if seq is None:
            self._no_seq += 1
        elif seq == self._expected and not self._held:
            self._expected = seq + 1
            self._ring[seq % self._restart_distance] = (seq, event.timestamp)
        else:
            return self._push_slow(event, seq, now)
        # The fast path: in order, nothing held. Only twins and forms can still drop it.
        check = self._filters.get(event.__class__)
        if check is not None and not check(event):
            return []
        self._released += 1
        return [event]

    def poll(self, now: float) -> list[ev.Event]:
        """Release held events whose gap has waited ``window_s``.

        Args:
            now: The current time, seconds on the clock given to :meth:`push`.

        Returns:
            The released events in ``seq`` order (empty when no gap timed out).
        """
        out: list[ev.Event] = []
        held = self._held
        arrivals = self._arrivals
        window = self._window
        while held:
            while arrivals[0][1] not in held:
                arrivals.popleft()
            if arrivals[0][0] + window > now:
                break
            self._give_up_gap(out)
            self._gaps_released += 1
        return out

    def next_deadline(self) -> float | None:
        """Say when :meth:`poll` next has work.

        Returns:
            The time (on the clock given to :meth:`push`) at which the oldest held event has
            waited ``window_s``, or ``None`` when nothing is held.
        """
        if not self._held:
            return None
        arrivals = self._arrivals
        while arrivals[0][1] not in self._held:
            arrivals.popleft()
        return arrivals[0][0] + self._window

    def flush(self) -> list[ev.Event]:
        """Release everything held, giving up every gap (e.g. at shutdown).

        Returns:
            The released events in ``seq`` order.
        """
        out: list[ev.Event] = []
        while self._held:
            self._give_up_gap(out)
            self._gaps_released += 1
        return out

    def new_session(self) -> list[ev.Event]:
        """A new replica session starts (it joined again): the next ``seq`` is a new baseline.

        Returns:
            The held events of the old session, released in order (as :meth:`flush`).
        """
        out = self.flush()
        self._expected = None
        self._given_up = []
        self._ring = [None] * self._restart_distance
        self._new_session = True
        return out

    @property
    def pending(self) -> int:
        """The number of events held right now."""
        return len(self._held)

    @property
    def stats(self) -> dict[str, int]:
        """Counters since creation.

        Keys: ``released`` (events returned), ``held`` (events that had to wait for a gap),
        ``gaps_released`` (gaps given up by :meth:`poll` or :meth:`flush`), ``late`` (events
        released after their gap was given up), ``duplicate_seq``, ``duplicate_twin`` (also
        tool calls re-delivered with the same ``tool_call_id``), ``duplicate_form``,
        ``no_seq`` (events without ``seq``), ``overflow`` (gaps released early because
        ``max_held`` was reached), ``restarts`` (the ``seq`` counter started over) and
        ``pending`` (events held now).
        """
        return {
            "released": self._released,
            "held": self._held_total,
            "gaps_released": self._gaps_released,
            "late": self._late,
            "duplicate_seq": self._duplicate_seq,
            "duplicate_twin": self._duplicate_twin,
            "duplicate_form": self._duplicate_form,
            "no_seq": self._no_seq,
            "overflow": self._overflow,
            "restarts": self._restarts,
            "pending": len(self._held),
        }

    # --- seq handling -----------------------------------------------------------------

    def _push_slow(self, event: ev.Event, seq: int, now: float) -> list[ev.Event]:
        expected = self._expected
        out: list[ev.Event] = []
        if expected is None:
            # The first seq is the baseline; anything below it was never seen, so it counts
            # as a given-up range and such events are released as late.
            if self._new_session:
                self._new_session = False
                self._restarts += 1
                self.restarted_with = event
            self._given_up = [(_BELOW_ALL, seq - 1)]
            self._expected = seq + 1
            self._release(event, out)
        elif seq > expected:
            if seq in self._held:
                self._duplicate_seq += 1
                return out
            self._hold(event, seq, now, out)
        elif seq == expected:
            self._expected = seq + 1
            self._release(event, out)
            self._drain(out)
        elif expected - seq > self._restart_distance:
            self._restart(event, seq, out)
        elif self._take_given_up(seq):
            self._late += 1
            self._release(event, out)
        elif self._new_content(event, seq):
            self._restart(event, seq, out)  # the seq came back with other content
        else:
            self._duplicate_seq += 1
        return out

    def _new_content(self, event: ev.Event, seq: int) -> bool:
        """Tell whether ``seq`` was released before with another timestamp (a new counter).

        Within ``restart_distance`` every released seq is remembered, so a seq that is not
        was never released: a gap given up long ago, whose copy is dropped (counted).
        """
        seen = self._ring[seq % self._restart_distance]
        return seen is not None and seen[0] == seq and seen[1] != event.timestamp

    def _hold(self, event: ev.Event, seq: int, now: float, out: list[ev.Event]) -> None:
        held = self._held
        held[seq] = event
        heappush(self._heap, seq)
        arrivals = self._arrivals
        arrivals.append((now, seq))
        self._held_total += 1
        if len(arrivals) > 2 * self._max_held:
            # Entries of events released by draining are only dropped lazily; compact.
            self._arrivals = deque(a for a in arrivals if a[1] in held)
        if len(held) > self._max_held:
            self._overflow += 1
            logger.debug(f"{self}: {len(held)} events held, releasing the oldest gap early")
            self._give_up_gap(out)

    def _drain(self, out: list[ev.Event]) -> None:
        """Release the held events that are now contiguous with ``expected``."""
        heap = self._heap
        held = self._held
        expected = self._expected
        while heap and heap[0] == expected:
            heappop(heap)
            self._release(held.pop(expected), out)
            expected += 1
        self._expected = expected
        if not held:
            self._arrivals.clear()

    def _give_up_gap(self, out: list[ev.Event]) -> None:
        """Skip the missing seqs in front of the oldest held event and release the run."""
        lo = self._expected
        nxt = self._heap[0]
        self._remember_given_up(lo, nxt - 1)
        logger.debug(f"{self}: gave up waiting for seq {lo}..{nxt - 1}")
        self._expected = nxt
        self._drain(out)

    def _remember_given_up(self, lo: int, hi: int) -> None:
        given_up = self._given_up
        if given_up and given_up[-1][1] == lo - 1:
            given_up[-1] = (given_up[-1][0], hi)
        else:
            given_up.append((lo, hi))
        if len(given_up) > self._dedup_memory:
            del given_up[0]

    def _take_given_up(self, seq: int) -> bool:
        """If ``seq`` lies in a given-up range, remove it from the range and say so."""
        given_up = self._given_up
        i = bisect_right(given_up, (seq, _ABOVE_ALL)) - 1
        if i < 0:
            return False
        lo, hi = given_up[i]
        if seq > hi:
            return False
        parts = [r for r in ((lo, seq - 1), (seq + 1, hi)) if r[0] <= r[1]]
        given_up[i : i + 1] = parts
        if len(given_up) > self._dedup_memory:
            del given_up[0]
        return True

    def _restart(self, event: ev.Event, seq: int, out: list[ev.Event]) -> None:
        logger.info(f"{self}: seq went back from {self._expected} to {seq}; counter restarted")
        self._restarts += 1
        while self._held:
            self._give_up_gap(out)
        self._given_up = [(_BELOW_ALL, seq - 1)]
        self._ring = [None] * self._restart_distance
        self._expected = seq + 1
        self.restarted_with = event
        self._release(event, out)

    def _release(self, event: ev.Event, out: list[ev.Event]) -> None:
        seq = event.seq
        if seq is not None:
            self._ring[seq % self._restart_distance] = (seq, event.timestamp)
        check = self._filters.get(event.__class__)
        if check is None or check(event):
            self._released += 1
            out.append(event)


__all__ = ["EventOrderer"]
