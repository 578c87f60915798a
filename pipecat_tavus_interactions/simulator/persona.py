"""The simulator's scripted persona (the replica's "LLM") and scripted user.

:class:`ScriptedPersona` answers a user text by the first matching :class:`PersonaRule`
(case-insensitive substring, or regular expression), optionally asking for a tool call first;
its reply template may use ``{result}`` (the tool's output), ``{text}`` (what the user said),
``{context}`` (the conversational context appended or overwritten by the bot so far) and the
named groups of a regular-expression rule. The same placeholders work in string tool
arguments. Unknown placeholders are left as written.

:class:`ScriptedUser` is a list of :class:`UserLine` that
:meth:`~.replica.TavusSimulator.run_script` speaks in order: each line waits for the replica
to finish its reply (and then ``pause_s``), or barges in after the replica has spoken
``barge_in_after_words`` words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from loguru import logger

from ..exceptions import ConfigurationError


class _Replica(Protocol):
    """What a scripted user needs from the simulator (``TavusSimulator`` has it).

    A protocol rather than the class itself, so this module does not import the simulator,
    which imports it (no import cycle, not even for types).
    """

    pipeline_mode: str
    emitted_count: int
    turn_idx: int

    async def wait_started(self) -> None:
        """Wait until the simulated replica runs."""

    async def user_says(self, text: str) -> None:
        """Make the simulated user say ``text``."""

    async def sleep(self, seconds: float) -> None:
        """Sleep on the simulator's clock."""

    async def wait_for_message(self, predicate: Any, *, since: int, timeout_s: float) -> Any:
        """Wait for an emitted message that matches ``predicate``."""

    async def wait_idle(self) -> None:
        """Wait until the replica is idle."""


__all__ = [
    "PersonaDecision",
    "PersonaRule",
    "ScriptedPersona",
    "ScriptedUser",
    "ToolCallSpec",
    "UserLine",
]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _fill(template: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


@dataclass(frozen=True, kw_only=True)
class ToolCallSpec:
    """A tool call the persona asks the bot to run.

    Parameters:
        name: Function name, e.g. ``"get_weather"``.
        arguments: Arguments; string values may use the persona placeholders.
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PersonaRule:
    """One reply rule of a :class:`ScriptedPersona`.

    Parameters:
        pattern: Substring to look for in the user text (case-insensitive), or a regular
            expression when ``regex`` is true (searched, case-insensitive).
        reply: Reply template (see the module docstring for placeholders).
        tool_call: A tool call to make before replying; its output fills ``{result}``.
        regex: Treat ``pattern`` as a regular expression.
    """

    pattern: str
    reply: str
    tool_call: ToolCallSpec | None = None
    regex: bool = False

    def __post_init__(self):
        if self.regex:
            re.compile(self.pattern)

    def match(self, text: str) -> dict[str, str] | None:
        """Return the named groups (empty for a substring rule) if ``text`` matches.

        Args:
            text: The user text.

        Returns:
            The named groups of the match, or ``None`` when the rule does not match.
        """
        if self.regex:
            m = re.search(self.pattern, text, re.IGNORECASE)
            if m is None:
                return None
            return {k: v for k, v in m.groupdict().items() if v is not None}
        return {} if self.pattern.lower() in text.lower() else None


@dataclass(frozen=True, kw_only=True)
class PersonaDecision:
    """What the persona decided for one user text.

    Parameters:
        text: The user text.
        reply_template: The template of the reply.
        tool_call: The tool call to make first (arguments already filled), if any.
        groups: Named groups of the matched rule.
    """

    text: str
    reply_template: str
    tool_call: ToolCallSpec | None = None
    groups: Mapping[str, str] = field(default_factory=dict)


class ScriptedPersona:
    r"""A rule-based stand-in for the replica's LLM.

    Example::

        persona = ScriptedPersona(
            rules=[
                PersonaRule(
                    pattern=r"weather in (?P<city>\w+)",
                    regex=True,
                    tool_call=ToolCallSpec(name="get_weather", arguments={"city": "{city}"}),
                    reply="The weather in {city}: {result}.",
                ),
                PersonaRule(pattern="hello", reply="Hi there, how can I help?"),
            ],
            default_reply="I see. Tell me more.",
            greeting="Welcome! Ask me anything.",
        )
    """

    def __init__(
        self,
        *,
        rules: Sequence[PersonaRule] = (),
        default_reply: str = "I see. Tell me more.",
        greeting: str | None = None,
        name: str = "Sim Persona",
        tool_error_reply: str = "Sorry, that did not work: {result}",
        tool_timeout_reply: str = "Sorry, I could not get that in time.",
    ):
        """Create the persona.

        Args:
            rules: Reply rules, tried in order; the first match wins.
            default_reply: Template used when no rule matches.
            greeting: Spoken once when the replica joins (full mode), if set.
            name: The persona name (the replica participant's ``userName``).
            tool_error_reply: Template used when the tool result has ``status: "error"``.
            tool_timeout_reply: Template used when no tool result arrived in time.
        """
        self.rules = tuple(rules)
        self.default_reply = default_reply
        self.greeting = greeting
        self.name = name
        self.tool_error_reply = tool_error_reply
        self.tool_timeout_reply = tool_timeout_reply

    def decide(self, text: str) -> PersonaDecision:
        """Choose the reply (and the tool call, if any) for a user text.

        Args:
            text: What the user said (or what ``conversation.respond`` injected).

        Returns:
            The decision; tool arguments have their placeholders filled.
        """
        for rule in self.rules:
            groups = rule.match(text)
            if groups is None:
                continue
            call = None
            if rule.tool_call is not None:
                values = {**groups, "text": text}
                arguments = {
                    k: _fill(v, values) if isinstance(v, str) else v
                    for k, v in rule.tool_call.arguments.items()
                }
                call = ToolCallSpec(name=rule.tool_call.name, arguments=arguments)
            return PersonaDecision(
                text=text, reply_template=rule.reply, tool_call=call, groups=groups
            )
        return PersonaDecision(text=text, reply_template=self.default_reply)

    def render(
        self,
        decision: PersonaDecision,
        *,
        result: str | None = None,
        status: str | None = None,
        context: Sequence[str] = (),
    ) -> str:
        """Render the reply text.

        Args:
            decision: The decision from :meth:`decide`.
            result: The tool output (or appended context) that answered the tool call.
            status: ``"success"``, ``"error"``, ``"timeout"`` or ``None`` (no tool call).
            context: The conversational context so far.

        Returns:
            The reply, with placeholders filled.
        """
        template = decision.reply_template
        if status == "error":
            template = self.tool_error_reply
        elif status == "timeout":
            template = self.tool_timeout_reply
        values = {
            **decision.groups,
            "text": decision.text,
            "result": result or "",
            "context": " ".join(context),
        }
        return _fill(template, values)


@dataclass(frozen=True, kw_only=True)
class UserLine:
    """One line the scripted user says.

    Parameters:
        text: What the user says.
        pause_s: Simulated seconds of silence before speaking (after the replica finished).
        barge_in_after_words: Instead of waiting for the replica to finish, start speaking
            once it has spoken this many words of its current reply.
    """

    text: str
    pause_s: float = 0.3
    barge_in_after_words: int | None = None

    def __post_init__(self):
        if not self.text.split():
            raise ConfigurationError("a user line needs at least one word")
        if self.barge_in_after_words is not None and self.barge_in_after_words < 1:
            raise ConfigurationError("barge_in_after_words must be >= 1")


class ScriptedUser:
    """A user who speaks scripted lines to the simulated replica.

    Example::

        user = ScriptedUser(
            lines=[UserLine(text="Hello"), UserLine(text="Stop", barge_in_after_words=2)]
        )
        await sim.run_script(user)
    """

    def __init__(self, *, lines: Sequence[UserLine | str], reply_timeout_s: float = 10.0):
        """Create the user.

        Args:
            lines: The lines, in order (plain strings become ``UserLine(text=...)``).
            reply_timeout_s: Wall-clock seconds to wait for the replica to answer a line
                before going on (the reply may come from the bot, e.g. in echo mode).
        """
        self.lines = tuple(UserLine(text=ln) if isinstance(ln, str) else ln for ln in lines)
        self.reply_timeout_s = reply_timeout_s

    async def run(self, sim: _Replica) -> None:
        """Speak every line to ``sim``, then wait for the replica to finish.

        Args:
            sim: The simulator (started, or about to be started by its transport).
        """
        await sim.wait_started()
        mark, turn = sim.emitted_count, sim.turn_idx
        for index, line in enumerate(self.lines):
            if line.barge_in_after_words is not None and index > 0:
                await self._wait_words(sim, line.barge_in_after_words, since=mark, turn=turn)
            else:
                if index > 0:
                    await self._wait_reply(sim, since=mark)
                await sim.sleep(line.pause_s)
            mark = sim.emitted_count
            await sim.user_says(line.text)
            turn = sim.turn_idx
        await self._wait_reply(sim, since=mark)

    async def _wait_words(self, sim: _Replica, words: int, *, since: int, turn: int) -> None:
        """Wait until the replica spoke ``words`` words of its answer to turn ``turn``."""

        def spoken(m: dict[str, Any]) -> bool:
            if m.get("turn_idx") != turn:
                return False
            if m["event_type"] == "conversation.replica.stopped_speaking":
                return True
            props = m.get("properties") or {}
            return (
                m["event_type"] == "conversation.utterance.streaming"
                and props.get("role") == "pal"
                and (len(props["speech"].split()) >= words or props.get("final", False))
            )

        try:
            await sim.wait_for_message(spoken, since=since, timeout_s=self.reply_timeout_s)
        except TimeoutError:
            logger.debug(f"{sim}: no replica speech to barge in on")

    async def _wait_reply(self, sim: _Replica, *, since: int) -> None:
        """Wait for the replica's answer to the line said at emission index ``since``.

        In full mode the replica answers by itself, so waiting for it to be idle is enough.
        In echo mode the answer comes from the bot: first wait for the replica to stop
        speaking after ``since`` (up to ``reply_timeout_s``).
        """
        if sim.pipeline_mode == "echo":
            try:
                await sim.wait_for_message(
                    lambda m: m["event_type"] == "conversation.replica.stopped_speaking",
                    since=since,
                    timeout_s=self.reply_timeout_s,
                )
            except TimeoutError:
                logger.debug(f"{sim}: no echo reply within {self.reply_timeout_s}s")
        await sim.wait_idle()
