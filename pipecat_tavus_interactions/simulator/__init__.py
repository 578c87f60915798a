"""A local Tavus replica: run the quickstart, the examples and the tests with no account.

- :class:`TavusSimulator` speaks the Interactions Protocol like a real replica (modes
  ``full`` and ``echo``), driven by a :class:`ScriptedPersona` and a :class:`ScriptedUser`,
  in simulated time, with optional seeded :class:`Chaos` on its messages.
- :class:`SimulatedTransport` puts it in a Pipecat pipeline the way ``DailyTransport`` puts a
  real replica there (app messages both ways, participants, join and leave).
- :class:`TavusRestSimulator` serves the REST endpoints ``TavusAPI`` uses, on loopback.
- :class:`SimulatedRoom` is the Tavus room for the relay
  (:class:`~pipecat_tavus_interactions.TavusReplicaRelay`): the simulator's messages, a drawn
  face with captions as video, and its speech as shaped tones.

Example::

    sim = TavusSimulator(persona=ScriptedPersona(default_reply="Hello!"), speed=50)
    transport = SimulatedTransport(sim)
    pipeline = Pipeline([transport.input(), tavus.input(), tavus.output(), transport.output()])
    ...
    await sim.run_script(ScriptedUser(lines=["Hi there"]))
    await sim.shutdown()
"""

from .chaos import Chaos, Delivery
from .persona import PersonaRule, ScriptedPersona, ScriptedUser, ToolCallSpec, UserLine
from .replica import TavusSimulator
from .rest import TavusRestSimulator
from .room import SimulatedRoom
from .transport import SimulatedInputTransport, SimulatedOutputTransport, SimulatedTransport

__all__ = [
    # the replica and its script
    "TavusSimulator",
    "ScriptedPersona",
    "PersonaRule",
    "ToolCallSpec",
    "ScriptedUser",
    "UserLine",
    "Chaos",
    "Delivery",
    # the Pipecat transport
    "SimulatedTransport",
    "SimulatedInputTransport",
    "SimulatedOutputTransport",
    # the REST API
    "TavusRestSimulator",
    # the relay's room
    "SimulatedRoom",
]
