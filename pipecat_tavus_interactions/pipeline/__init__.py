"""The Pipecat drivers: the facade, the two processors, frames, tool runner and audio.

They translate frames into calls on the conversation core
(:class:`~pipecat_tavus_interactions.core.TavusConnection`) and its effects into frames,
messages, handler calls and tasks. They hold no protocol state of their own.
"""
