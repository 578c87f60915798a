"""Content de-duplication for :class:`~.ordering.EventOrderer`: twins and forms.

:class:`ContentDedup` is mixed into the orderer. It drops the ``pal``/``replica`` twin of an
event (keyed on content, since twins may carry different ``seq`` values), a tool call
delivered again with the same ``tool_call_id``, and the second form of one speaking
transition. Keys hold a hash of the text, never the text itself, so the memory of recent
keys stays small however long the utterances are. Pure: no asyncio, no pipecat.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import events as ev


class ContentDedup:
    """The content filters of :class:`~.ordering.EventOrderer` (a mixin).

    The orderer holds the state: ``_keys``/``_old_keys`` (two generations of keys),
    ``_speaking`` (the last transition per role), ``_dedup_memory`` and the counters.
    """

    _keys: dict[tuple, list[str] | None]
    _old_keys: dict[tuple, list[str] | None]
    _speaking: dict[str, tuple[bool, int | None, str | None, list[str]]]
    _dedup_memory: int
    _duplicate_twin: int
    _duplicate_form: int

    def _content_filters(self) -> dict[type[ev.Event], Callable[[ev.Event], bool]]:
        """The twin and form filter of each event model (subclasses share their base's)."""
        bases = (
            (ev.SpeakingEvent, self._filter_speaking),
            (ev.UtteranceStreamingEvent, self._filter_streaming),
            (ev.UtteranceEvent, self._filter_utterance),
            (ev.ToolCallEvent, self._filter_tool_call),
        )
        filters: dict[type[ev.Event], Callable[[ev.Event], bool]] = {}
        for cls in ev.EVENT_MODELS:
            for base, check in bases:
                if issubclass(cls, base):
                    filters[cls] = check
                    break
        return filters

    def _rotate(self) -> None:
        """Start a new key generation; the oldest one is forgotten."""
        self._old_keys = self._keys
        self._keys = {}

    def _first_time(self, key: tuple) -> bool:
        """Remember a content key; False (a twin, counted) when it was seen already."""
        keys = self._keys
        if key in keys or key in self._old_keys:
            self._duplicate_twin += 1
            return False
        keys[key] = None
        if len(keys) >= self._dedup_memory:
            self._rotate()
        return True

    def _filter_utterance(self, e: ev.Event) -> bool:
        turn = e.turn_idx
        inference_id = e.inference_id
        if turn is None and inference_id is None:
            return True
        key = (0, e.role, turn, inference_id, hash(e.speech))
        return self._first_time(key)

    def _filter_streaming(self, e: ev.Event) -> bool:
        turn = e.turn_idx
        inference_id = e.inference_id
        if turn is None and inference_id is None:
            return True
        key = (
            1,
            e.role,
            turn,
            inference_id,
            e.content_index,
            e.final,
            e.is_interrupted,
            hash(e.speech),
        )
        return self._first_time(key)

    def _filter_tool_call(self, e: ev.Event) -> bool:
        call_id = e.tool_call_id
        if call_id is None:
            return True
        key = (2, e.event_type, call_id)
        return self._first_time(key)

    def _filter_speaking(self, e: ev.Event) -> bool:
        role = e.role
        speaking = e.speaking
        turn = e.turn_idx
        # The user's id changes while the user talks: compare user transitions by
        # alternation only.
        inference_id = None if role == ev.ROLE_USER else e.inference_id
        last = self._speaking.get(role)
        if (
            last is not None
            and last[0] == speaking
            and last[1] == turn
            and (inference_id is None or last[2] is None or last[2] == inference_id)
        ):
            return self._speaking_copy(e, last[3])
        types = [e.event_type]
        if inference_id is not None:
            # The other form may come after an intervening transition; the id still tells.
            key = (3, role, speaking, turn, inference_id)
            keys = self._keys
            seen = keys.get(key) or self._old_keys.get(key)
            if seen is not None:
                return self._speaking_copy(e, seen)
            keys[key] = types
            if len(keys) >= self._dedup_memory:
                self._rotate()
        self._speaking[role] = (speaking, turn, inference_id, types)
        return True

    def _speaking_copy(self, e: ev.Event, types: list[str]) -> bool:
        """Count a repeated speaking transition as a twin or as another form; drop it."""
        if e.event_type in types:
            # Same event type and (normalised) role: the pal/replica twin.
            self._duplicate_twin += 1
        else:
            types.append(e.event_type)
            self._duplicate_form += 1
        return False


__all__ = ["ContentDedup"]
