"""Drive a Tavus CVI replica from Pipecat through the Tavus Interactions Protocol."""

__version__ = "0.1.0"
